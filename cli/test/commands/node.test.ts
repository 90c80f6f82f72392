import crypto from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { serverForTests } from '../support/cli-server.js';
import { dvic } from '../support/run-cli.js';

const server = serverForTests();

/** Enrolls a node with this id (ids are random: two sharing a prefix are made on purpose). */
async function enrollWithId(name: string, id: string): Promise<void> {
  vi.spyOn(crypto, 'randomUUID').mockReturnValueOnce(id as `${string}-${string}-${string}-${string}-${string}`);
  await server().server.enroll(name);
}

describe('dvic node', () => {
  it('shows one node by the start of its id, asking the server for that node only', async () => {
    const { agent, nodeId } = await server().agent('cli-detail');
    agent.sendHardware({ cpu: { total_pct: 37, per_core_pct: [37] } });
    const list = vi.spyOn(server().server.app.nodeRegistry, 'list');
    const res = await dvic(['node', nodeId.slice(0, 6)], server().env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^cli-detail\s+online/);
    expect(list).not.toHaveBeenCalled();
    list.mockRestore();
  });

  it('lists the nodes the server names when the start of an id matches several', async () => {
    await enrollWithId('twin-1', 'abcd1111-0000-4000-8000-000000000001');
    await enrollWithId('twin-2', 'abcd2222-0000-4000-8000-000000000002');
    const candidates = 'give one of: abcd1111-0000-4000-8000-000000000001 (twin-1), abcd2222-0000-4000-8000-000000000002 (twin-2)';
    for (const args of [['node', 'abcd'], ['demos', 'abcd'], ['logs', 'abcd'], ['exec', 'abcd', '--', 'true'], ['nodes', 'revoke', 'abcd']]) {
      const res = await dvic(args, server().env);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr, args.join(' ')).toBe(`dvic: "abcd" matches 2 nodes: twin-1, twin-2; ${candidates}\n`);
    }
    expect((await dvic(['node', 'abcd2'], server().env)).stdout).toMatch(/^twin-2\s+offline/);
  });

  it('says when no node has that name', async () => {
    expect(await dvic(['node', 'no-such-node'], server().env)).toMatchObject({ code: 1, stderr: 'dvic: no node "no-such-node" (give its name, its id, or the start of its id)\n' });
  });
});
