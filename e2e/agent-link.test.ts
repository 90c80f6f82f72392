// The agent's link to the server: a quiet node stays connected (the server's pings are traffic),
// and a link that went dead without a close is noticed and replaced. Real server, real agent.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getNode } from './support/api.js';
import { setupNode } from './support/logs.js';
import { sleep, stopAll, waitFor } from './support/processes.js';

afterEach(async () => { await stopAll(); });
afterAll(async () => { await stopAll(); });

// Pings every second, no hardware report for an hour: only pings cross a quiet link.
const quietServer = { DVIC_PING_INTERVAL_MS: '1000', DVIC_METRICS_INTERVAL_S: '3600' };
const dropped = /connection closed|reconnecting|nothing from the server/;

describe('the link to the server', () => {
  it('a quiet node stays connected: the server\'s pings count as traffic', async () => {
    const { api, node, agent } = await setupNode('quiet', { dead_link_s: 2.5 }, quietServer);
    const since = (await getNode(api, node.id)).status_since;
    await sleep(9000); // more than three dead-link periods with nothing but pings
    expect(agent.output).not.toMatch(dropped);
    const view = await getNode(api, node.id);
    expect(view.status).toBe('online');
    expect(view.status_since).toBe(since);
  });

  it('a link that went silent is noticed within dead_link_s, and the agent connects again', async () => {
    const { api, node, agent, server } = await setupNode('silent', { dead_link_s: 2 }, quietServer);
    server.signal('SIGSTOP'); // the TCP connection stays up; nothing comes through it
    try {
      await agent.waitForOutput('nothing from the server for 2 s', 10_000);
    } finally {
      server.signal('SIGCONT');
    }
    await waitFor(async () => /connected to/.test(agent.output.split('nothing from the server')[1] ?? '') && (await getNode(api, node.id)).status === 'online',
      30_000, 'the agent connected again');
  });
});
