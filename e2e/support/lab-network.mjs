// A lab network made of network namespaces, for onboarding through a source node:
//
//   host ns (the server, on hostIp)  --veth--  source ns (the source agent)  --veth--  target ns (the machine)
//
// The host has no address or route on the lab side: it reaches the target only through the source
// node's tunnel. The target reaches the server through a relay (socat) that the source ns runs on
// its lab address (labServerIp), which is the server's DVIC_PUBLIC_URL. Everything stays in these
// namespaces and the veth pairs between them; destroy() removes them.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';

const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' });

export function createLabNetwork() {
  const id = crypto.randomBytes(3).toString('hex');
  const n = 1 + (parseInt(id.slice(0, 2), 16) % 250);
  const source = `dvic-s-${id}`;
  const target = `dvic-t-${id}`;
  const hostIp = `10.231.${n}.1`;
  const sourceIp = `10.231.${n}.2`;
  const labServerIp = `10.232.${n}.1`;
  const targetIp = `10.232.${n}.2`;
  const relays = [];
  ip('netns', 'add', source);
  ip('netns', 'add', target);
  try {
    ip('link', 'add', `vh-${id}`, 'type', 'veth', 'peer', 'name', `vs-${id}`);
    ip('link', 'set', `vs-${id}`, 'netns', source);
    ip('addr', 'add', `${hostIp}/30`, 'dev', `vh-${id}`);
    ip('link', 'set', `vh-${id}`, 'up');
    ip('link', 'add', `st-${id}`, 'type', 'veth', 'peer', 'name', `ts-${id}`);
    ip('link', 'set', `st-${id}`, 'netns', source);
    ip('link', 'set', `ts-${id}`, 'netns', target);
    for (const [ns, dev, addr] of [[source, `vs-${id}`, `${sourceIp}/30`], [source, `st-${id}`, `${labServerIp}/29`], [target, `ts-${id}`, `${targetIp}/29`]]) {
      ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  } catch (err) {
    destroy();
    throw err;
  }

  function destroy() {
    for (const relay of relays) relay.kill('SIGKILL');
    for (const ns of [source, target]) { try { ip('netns', 'del', ns); } catch { /* gone */ } }
    try { ip('link', 'del', `vh-${id}`); } catch { /* went with the namespace */ }
  }

  return {
    source, target, hostIp, labServerIp, targetIp,
    /** An address on the target's network that nobody has. */
    unusedIp: `10.232.${n}.3`,
    /** Forwards labServerIp:port (in the source ns) to hostIp:port, for agents on the lab side. */
    relay(port) {
      const child = spawn('ip', ['netns', 'exec', source, 'socat', `TCP-LISTEN:${port},bind=${labServerIp},fork,reuseaddr`, `TCP:${hostIp}:${port}`], { stdio: 'ignore' });
      relays.push(child);
      return child;
    },
    /** argv run inside a namespace. */
    exec: (ns, argv) => ['ip', 'netns', 'exec', ns, ...argv],
    destroy,
  };
}
