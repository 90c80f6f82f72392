// The real server under a small open-file limit (prlimit --nofile=400:400) and more agents than
// fit: a reserve of descriptors stays free for the API and the database, so the agents past it
// are refused with 1013 (try again later) instead of the server failing with EMFILE.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CloseCode } from '@dvic/protocol';
import { connectAgent, type SimulatedAgent } from '../server/test/support/simulated-agent.mjs';
import { call, enroll, signIn } from './support/api.js';
import { repoDir, startServer, stopAll, waitFor } from './support/processes.js';

afterAll(async () => { await stopAll(); });

const LIMIT = 400;
/** More agents than 400 descriptors less the reserve (64) and the server's own files can hold; bounded. */
const AGENTS = 360;


describe('file descriptor reserve', () => {
  it(`under a ${LIMIT}-descriptor limit: extra agents get 1013, stats answers with the numbers, the API and sign-in work, and agents are accepted again once some leave`, async () => {
    const server = await startServer({ command: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`, process.execPath, path.join(repoDir, 'server/dist/main.js')] });
    const api = await signIn(server.baseUrl);
    const nodes: { node_id: string; private_key: string }[] = [];
    for (let i = 0; i < AGENTS; i++) nodes.push((await enroll(api, `n${i}`)).config);

    const connect = (config: { node_id: string; private_key: string }) =>
      connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key });
    const accepted: SimulatedAgent[] = [];
    const refused: { config: { node_id: string; private_key: string }; code: number; reason: string }[] = [];
    for (let i = 0; i < AGENTS; i += 30) {
      const batch = nodes.slice(i, i + 30);
      const results = await Promise.allSettled(batch.map(connect));
      results.forEach((r, k) => {
        if (r.status === 'fulfilled') accepted.push(r.value);
        else refused.push({ config: batch[k]!, ...(r.reason as { code: number; reason: string }) });
      });
    }
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((r) => r.code === CloseCode.tryAgainLater)).toBe(true);
    expect(refused[0]!.reason).toMatch(/connection limit: try again later/);

    const stats = await call(api.GET('/api/v1/server/stats'));
    expect(stats).toMatchObject({ fds_limit: LIMIT, fds_reserved: 64, agents_connected: accepted.length, agent_connections_refused: refused.length });
    expect(stats.fds_open).toBeLessThanOrEqual(LIMIT - 64 + 30); // a batch may land between two counts
    expect((await call(api.GET('/api/v1/nodes'))).nodes).toHaveLength(AGENTS);
    const another = await signIn(server.baseUrl);
    expect((await call(another.GET('/api/v1/auth/me'))).user.username).toBe('admin');

    for (const agent of accepted.splice(0, 20)) agent.close();
    await waitFor(async () => (await call(api.GET('/api/v1/server/stats'))).agents_connected === accepted.length, 10_000, 'the agents gone');
    const back = await Promise.all(refused.slice(0, 5).map((r) => connect(r.config)));
    expect(back.every((agent) => agent.welcome.type === 'welcome')).toBe(true);
    for (const agent of [...accepted, ...back]) agent.close();
  });
});
