import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NodeView } from '@dvic/protocol';
import { describe, expect, it } from 'vitest';
import { connectAgent } from '../../../server/test/support/simulated-agent.mjs';
import { waitFor } from '../../../server/test/support/test-server.js';
import { sshTarget } from '../../../server/test/support/ssh-target.js';
import { serverForTests } from '../support/cli-server.js';
import { dvic, startDvic } from '../support/run-cli.js';

const server = serverForTests();

const listed = async (env: NodeJS.ProcessEnv, args: string[] = []) => (JSON.parse((await dvic(['nodes', '--json', ...args], env)).stdout) as { nodes: NodeView[] }).nodes;

describe('dvic nodes', () => {
  it('--json lists exactly the nodes of the API; the table shows names and status in words', async () => {
    const { agent, nodeId } = await server().agent('cli-pi', { room: 'hall' });
    await server().server.enroll('cli-offline');
    agent.sendHardware({ cpu: { total_pct: 37, per_core_pct: [37] } });
    await waitFor(async () => (await server().server.api('GET', `/api/v1/nodes/${nodeId}`)).json().node.hardware, 5000, 'hardware');
    const api = (await server().server.api('GET', '/api/v1/nodes')).json() as { nodes: NodeView[] };
    expect((await listed(server().env)).map((n) => n.id).sort()).toEqual(api.nodes.map((n) => n.id).sort());
    const table = (await dvic(['nodes'], server().env)).stdout;
    expect(table).toMatch(/^NAME\s+STATUS\s+CPU/);
    expect(table).toMatch(/cli-pi\s+online \d+s\s+37%/);
    expect(table).toMatch(/cli-offline\s+offline/);
    expect((await listed(server().env, ['--status', 'online'])).map((n) => n.name)).not.toContain('cli-offline');
    expect((await listed(server().env, ['--label', 'room=hall'])).map((n) => n.name)).toEqual(['cli-pi']);
  });

  it('adds a node and writes its agent config with mode 0600, refusing to overwrite; renames, labels and revokes it by name', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-cli-add-')), 'new.json');
    const added = await dvic(['nodes', 'add', 'cli-new', '--label', 'kind=pi', '--output', out], server().env);
    expect(added.code, added.stderr).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toMatchObject({ server_url: expect.stringMatching(/\/api\/v1\/agent$/), private_key: expect.stringContaining('PRIVATE KEY') });
    expect(await dvic(['nodes', 'add', 'cli-new2', '--output', out], server().env)).toMatchObject({ code: 1, stderr: `dvic: ${out} exists (use --force to overwrite)\n` });
    expect((await dvic(['nodes', 'rename', 'cli-new', 'cli-renamed'], server().env)).stdout).toMatch(/^cli-new is now cli-renamed \(/);
    expect((await dvic(['nodes', 'label', 'cli-renamed', 'room=lab', 'kind-'], server().env)).stdout).toBe('cli-renamed: room=lab\n');
    expect((await dvic(['nodes', 'revoke', 'cli-renamed'], server().env)).stdout).toBe('cli-renamed revoked\n');
    expect((await dvic(['nodes', '--status', 'revoked'], server().env)).stdout).toMatch(/cli-renamed\s+revoked/);
  });

  it('watch follows live changes and stops on Ctrl-C with code 0', async () => {
    const { config } = await server().server.enroll('cli-watched');
    const watch = startDvic(['nodes', 'watch'], server().env);
    await waitFor(() => /cli-watched\s+offline/.test(watch.stdout()), 10_000, 'first table');
    const watched = await connectAgent({ url: server().server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
    watched.sendHardware({ cpu: { total_pct: 88, per_core_pct: [88] } });
    await waitFor(() => /cli-watched\s+online \d+s\s+88%/.test(watch.stdout()), 10_000, 'the update');
    watched.close();
    await waitFor(() => watch.stdout().split('cli-watched ').at(-1)!.trimStart().startsWith('offline'), 10_000, 'offline again');
    watch.interrupt();
    expect((await watch.done).code).toBe(0);
  });
});

describe('dvic nodes add --host: the host key', () => {
  const add = (port: number) => ['nodes', 'add', 'cli-ssh', '--host', `127.0.0.1:${port}`, '--user', 'pi', '--password-stdin', '--via', 'server'];

  it('without a terminal, prints the key and exits 3, saying to pass --accept-host-key', async () => {
    const target = await sshTarget();
    try {
      const run = await dvic(add(target.port), server().env, 'pw\n');
      expect(run.code, run.stderr).toBe(3);
      expect(run.stdout).toMatch(/The host key of 127\.0\.0\.1:\d+ is (SHA256:\S+)\.\nNo terminal to ask on: if that is the machine's key, run the same command again with --accept-host-key SHA256:\S+\n$/);
    } finally {
      target.close();
    }
  });

  it('on a terminal, asks; yes accepts the key and the enrollment goes on', async () => {
    const target = await sshTarget();
    try {
      const run = await dvic(add(target.port), server().env, 'pw\n', 'y\n');
      expect(run.terminal).toMatch(/^The host key of 127\.0\.0\.1:\d+ is SHA256:\S+\.\nIs that the machine's key: accept\? \[y\/N\] $/);
      // This target refuses every login: past the host key, the enrollment fails at authenticate.
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^failed at authenticate: /);
      const no = await dvic(add(target.port), server().env, 'pw\n', '\n');
      expect(no).toMatchObject({ code: 3, stdout: expect.stringContaining('Host key not accepted: nothing was installed.') });
    } finally {
      target.close();
    }
  });
});
