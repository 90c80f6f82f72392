// Agent self-update under real systemd: a Debian tree booted by systemd-nspawn (systemd as PID 1),
// the agent installed by install.sh from an install link, so the unit install.sh writes runs the
// guard (ExecStartPre) and restarts the agent (Restart=always). A version that crashes at import
// is rolled back by the guard; a good one is switched to and becomes the guard. Health timings
// shortened in the node's config (update_hello_timeout_s / update_stable_s). A version that hangs
// at import is restarted by the timer the guard arms, then rolled back.
import fs from 'node:fs';
import path from 'node:path';
import type { AgentUpdateView } from '@dvic/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agentVersion } from './support/agent-supervisor.js';
import { call, getNode, session, type Api } from './support/api.js';
import { startServer, stopAll, tempDir, waitFor, type ServerProcess } from './support/processes.js';
import { bootTarget, canBootTargets, debianTree, type Target } from './support/target-host.mjs';

const missing = canBootTargets();
if (missing && process.env.CI === 'true') throw new Error(`agent update systemd e2e cannot run: ${missing}`);

let server: ServerProcess;
let api: Api;
let shipped: string;
const targets: Target[] = [];

function ship(source: string): void {
  fs.writeFileSync(`${shipped}.tmp`, source);
  fs.renameSync(`${shipped}.tmp`, shipped);
}

beforeAll(async () => {
  if (missing) return;
  debianTree();
  shipped = path.join(tempDir('dvic-update-systemd-'), 'dvic_agent.py');
  ship(agentVersion('0.2.0'));
  server = await startServer({ env: { DVIC_AGENT_FILE: shipped } });
  ({ api } = await session(server.baseUrl));
}, 600_000);
afterEach(async () => { for (const t of targets.splice(0)) await t.stop(); });
afterAll(async () => { await stopAll(); });

async function update(nodeId: string): Promise<AgentUpdateView['nodes'][number]> {
  const { id } = await call(api.POST('/api/v1/agent-updates', { body: { targets: { nodes: [nodeId] }, canary: true } }));
  const done = await waitFor(async () => {
    const { update: u } = await call(api.GET('/api/v1/agent-updates/{id}', { params: { path: { id } } }));
    return ['done', 'failed', 'cancelled'].includes(u.state) && u;
  }, 120_000, 'the update to end');
  return done.nodes[0]!;
}

describe.skipIf(missing)('agent self-update under systemd', () => {
  it('the unit\'s guard rolls back a version that crashes or hangs at import; a good version is switched to', async () => {
    const t = await bootTarget();
    targets.push(t);
    const link = await call(api.POST('/api/v1/enrollment-tokens', { body: { max_uses: 1 } }));
    const installed = t.run(link.command.replace('| sudo sh', '| sh'));
    expect(installed.status, installed.output).toBe(0);
    const set = t.run(`python3 -c 'import json; p = "/etc/dvic-agent/config.json"; c = json.load(open(p)); c.update(update_hello_timeout_s=5, update_stable_s=3); json.dump(c, open(p, "w"))' && systemctl restart dvic-agent`);
    expect(set.status, set.output).toBe(0);
    const node = await waitFor(async () => (await call(api.GET('/api/v1/nodes'))).nodes.find((n) => n.name === t.hostname && n.status === 'online'), 30_000, 'the node online');
    const onlineOn = (version: string) => waitFor(async () => { const n = await getNode(api, node.id); return n.status === 'online' && n.agent_version === version; }, 60_000, `online on ${version}`);
    const entry = () => t.run('readlink -f /opt/dvic-agent/dvic_agent.py').output.trim();

    ship(agentVersion('0.2.0', (s) => s.replace('\nimport base64\n', '\nimport base64\nimport sys\nif "--selftest" not in sys.argv and "--guard" not in sys.argv:\n    raise RuntimeError("crash at import")\n')));
    const crashed = await update(node.id);
    expect(crashed).toMatchObject({ state: 'failed', step: 'rolled_back' });
    await onlineOn('0.1.0');
    expect(entry()).toBe('/opt/dvic-agent/versions/0.1.0/dvic_agent.py');
    expect(t.run('journalctl -u dvic-agent --no-pager').output).toContain('RuntimeError: crash at import');

    // A version that hangs at import never runs its own watchdog: the guard's timer restarts the
    // unit once the trial is overdue (5 + 3 s, + 10 s), and the guard rolls it back.
    ship(agentVersion('0.2.0', (s) => s.replace('\nimport base64\n', '\nimport base64\nimport sys\nimport time\nwhile "--selftest" not in sys.argv and "--guard" not in sys.argv and "--trial-deadline" not in sys.argv:\n    time.sleep(1)\n')));
    const hung = await update(node.id);
    expect(hung).toMatchObject({ state: 'failed', step: 'rolled_back' });
    await onlineOn('0.1.0');
    expect(t.run('journalctl -u dvic-agent-trial-* --no-pager').output).toContain('still unproven past its deadline');

    ship(agentVersion('0.2.1'));
    expect(await update(node.id)).toMatchObject({ state: 'done', step: 'healthy' });
    await onlineOn('0.2.1');
    expect(entry()).toBe('/opt/dvic-agent/versions/0.2.1/dvic_agent.py');
    const sums = t.run('sha256sum /opt/dvic-agent/guard.py /opt/dvic-agent/versions/0.2.1/dvic_agent.py').output.trim().split('\n').map((l) => l.split(' ')[0]);
    expect(sums[0]).toBe(sums[1]); // the version that proved healthy is the guard now
    expect(t.exists('opt/dvic-agent/trial.json')).toBe(false);
  });
});
