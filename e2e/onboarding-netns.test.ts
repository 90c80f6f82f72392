// Onboarding across network namespaces: the target (a Debian tree booted with systemd by
// systemd-nspawn) sits in its own namespace that only the source node's namespace reaches; the
// server, in the host namespace, has no route into it and reaches it only through the source
// node's tunnel. The installed agent reaches the server back through a relay in the source
// namespace (the server's DVIC_PUBLIC_URL), as a lab gateway would.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, enroll, getNode, signIn, type Api } from './support/api.js';
import { createLabNetwork, type LabNetwork } from './support/lab-network.mjs';
import { freePort, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig } from './support/processes.js';
import { bootTarget, canBootTargets, debianTree, TARGET_PASSWORD, TARGET_USER, type Target } from './support/target-host.mjs';

const missing = canBootTargets() ?? (execFileSync('sh', ['-c', 'command -v socat || true']).toString().trim() ? null : 'socat is not installed');
if (missing && process.env.CI === 'true') throw new Error(`netns onboarding e2e cannot run: ${missing}`);

let lab: LabNetwork;
let target: Target;
let api: Api;
let sourceId: string;

beforeAll(async () => {
  if (missing) return;
  debianTree();
  lab = createLabNetwork();
  const port = await freePort();
  lab.relay(port);
  await startServer({ port, env: { DVIC_HOST: lab.hostIp, DVIC_PUBLIC_URL: `http://${lab.labServerIp}:${port}` } });
  api = await signIn(`http://${lab.hostIp}:${port}`);
  const { node, config } = await enroll(api, 'gateway');
  sourceId = node.id;
  const dir = tempDir();
  startAgent(writeAgentConfig(dir, config), [], lab.exec(lab.source, []));
  await waitFor(async () => (await getNode(api, sourceId)).status === 'online', 30_000, 'the source node online, through the relay');
  target = await bootTarget({ netns: lab.target });
  expect(path.isAbsolute(dir)).toBe(true);
}, 600_000);
afterAll(async () => {
  await target?.stop();
  await stopAll();
  lab?.destroy();
});

const settled = (id: string) => waitFor(async () => {
  const { enrollment } = await call(api.GET('/api/v1/enrollments/{id}', { params: { path: { id } } }));
  return enrollment.state !== 'running' && enrollment;
}, 120_000, `enrollment ${id}`);

describe.skipIf(missing)('onboarding a machine only the source node reaches', () => {
  it('installs a live node through the tunnel; the host has no route of its own to the target', async () => {
    expect(execFileSync('ip', ['route', 'get', lab.targetIp]).toString()).not.toMatch(/dev vh-/);
    const body = { name: 'hidden-pi', host: lab.targetIp, port: target.port, username: TARGET_USER, password: TARGET_PASSWORD, via: 'gateway' };
    const shown = await settled((await call(api.POST('/api/v1/enrollments', { body }))).enrollment.id);
    expect(shown.state).toBe('awaiting_host_key');
    const done = await settled((await call(api.POST('/api/v1/enrollments', { body: { ...body, accept_host_key: shown.host_key_fingerprint! } }))).enrollment.id);
    expect(done.error).toBeNull();
    expect(done.state).toBe('succeeded');
    const node = await getNode(api, done.node_id!);
    expect(node).toMatchObject({ name: 'hidden-pi', status: 'online' });
    expect(node.host?.hostname).toBe(target.hostname);
  });

  it('an unreachable address fails at open_tunnel, named from the source node', async () => {
    const body = { name: 'nobody', host: lab.unusedIp, username: TARGET_USER, password: TARGET_PASSWORD, via: 'gateway' };
    const failed = await settled((await call(api.POST('/api/v1/enrollments', { body }))).enrollment.id);
    expect(failed).toMatchObject({ state: 'failed', error: { step: 'open_tunnel' } });
    expect(failed.error!.message).toMatch(new RegExp(`^through gateway: cannot connect to ${lab.unusedIp.replaceAll('.', '\\.')}:22 from this node: (No route to host|timed out)`));
  });
});
