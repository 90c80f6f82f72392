import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../server/test/support/test-server.js';
import { serverForTests } from '../support/cli-server.js';
import { SimulatedDemo } from '../support/demo-logs.js';
import { dvic } from '../support/run-cli.js';

const server = serverForTests();

describe('dvic demos', () => {
  it('lists the demo processes of a node, and warns about one whose log file another user owns', async () => {
    const { agent } = await server().agent('cli-demos');
    const kiosk = new SimulatedDemo(agent, 'kiosk');
    const spoof = new SimulatedDemo(agent, 'spoof');
    kiosk.state(true, { pid: 42, user: 'lab', file_uid: 1000, trusted: true });
    spoof.state(true, { pid: 43, user: 'lab', file_uid: 1001, trusted: false });
    await kiosk.write([['INFO', 'booted'], ['ERROR', 'camera lost']]);
    await waitFor(async () => (await dvic(['demos', 'cli-demos', '--json'], server().env)).stdout.includes('"spoof"'), 5000, 'both demos');
    const table = (await dvic(['demos', 'cli-demos'], server().env)).stdout.split('\n');
    expect(table[0]).toMatch(/^NODE\s+DEMO\s+STATE\s+PID\s+CONTAINER\s+LINES\s+ERRORS\s+LAST LINE\s+NOTE$/);
    expect(table.find((l) => l.includes('kiosk'))).toMatch(/^cli-demos\s+kiosk\s+alive \d+s\s+42\s+-\s+2\s+1\s+\d+s ago\s*$/);
    expect(table.find((l) => l.includes('spoof'))).toMatch(/spoof\s+alive \d+s\s+43 .*⚠ untrusted: file owned by uid 1001, not the demo's user$/);
    expect((await dvic(['demos'], server().env)).stdout).toMatch(/cli-demos\s+spoof/);
  });
});
