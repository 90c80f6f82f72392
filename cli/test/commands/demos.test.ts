import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../server/test/support/test-server.js';
import { serverForTests } from '../support/cli-server.js';
import { SimulatedDemo } from '../support/demo-logs.js';
import { runCommands } from '../support/exec-agent.js';
import { dvic } from '../support/run-cli.js';

const server = serverForTests();

describe('dvic demos', () => {
  it('lists one row per demo across restarts, problems first, and warns about one whose log file another user owns', async () => {
    const { agent } = await server().agent('cli-demos');
    const kiosk = new SimulatedDemo(agent, 'kiosk');
    const spoof = new SimulatedDemo(agent, 'spoof');
    kiosk.state(true, { pid: 42, user: 'lab', file_uid: 1000, trusted: true });
    spoof.state(true, { pid: 43, user: 'lab', file_uid: 1001, trusted: false });
    await kiosk.write([['INFO', 'booted'], ['ERROR', 'camera lost']]);
    // kiosk restarts: a second run of the same demo is the same row.
    kiosk.state(false);
    const again = new SimulatedDemo(agent, 'kiosk', 'kiosk-token-0000000002');
    again.state(true, { pid: 44, user: 'lab', file_uid: 1000, trusted: true });
    await waitFor(async () => (await dvic(['demos', 'cli-demos', '--json'], server().env)).stdout.includes('"restarts": 1'), 5000, 'the restart');
    const table = (await dvic(['demos', 'cli-demos'], server().env)).stdout.split('\n');
    expect(table[0]).toMatch(/^NODE\s+DEMO\s+STATE\s+RESTARTS\s+EXPECTED\s+LINES\s+ERRORS\s+LAST LINE\s+NOTE$/);
    expect(table.filter((l) => l.includes('kiosk'))).toHaveLength(1);
    expect(table.find((l) => l.includes('kiosk'))).toMatch(/^cli-demos\s+kiosk\s+(running|restarting) \d+s\s+1\s+no\s+2\s+1\s+\d+s ago\s*$/);
    expect(table.find((l) => l.includes('spoof'))).toMatch(/spoof\s+running \d+s\s+0\s+no .*⚠ untrusted: file owned by uid 1001, not the demo's user$/);
    expect((await dvic(['demos'], server().env)).stdout).toMatch(/cli-demos\s+spoof/);
    expect((await dvic(['demos', '--state', 'crashed'], server().env)).stdout).toBe('no demos seen yet\n');
    const bad = await dvic(['demos', '--state', 'sleeping'], server().env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--state must be one of running/);
  });

  it('runs a demo\'s restart command on its node and exits with its code; says what is missing otherwise', async () => {
    const { agent } = await server().agent('cli-actions');
    runCommands(agent, (r) => ({ stdout: `ran: ${r.command}\n`, exit_code: r.command === 'false-restart' ? 4 : 0 }));
    new SimulatedDemo(agent, 'signage').state(true, { pid: 50, user: 'lab', file_uid: 1000, trusted: true });
    const demo = await waitFor(async () => (await server().server.api('GET', '/api/v1/demos?node=cli-actions')).json().demos[0], 5000, 'the demo');
    const unset = await dvic(['demos', 'restart', 'signage'], server().env);
    expect([unset.code, unset.stderr]).toEqual([1, expect.stringMatching(/no restart command is set for signage/)]);
    await server().server.api('PATCH', `/api/v1/demos/${demo.id}`, { actions: { restart: 'systemctl restart signage', stop: 'false-restart' } });
    expect(await dvic(['demos', 'restart', 'signage', '--node', 'cli-actions'], server().env)).toEqual({ code: 0, stdout: 'ran: systemctl restart signage\n', stderr: '' });
    expect((await dvic(['demos', 'stop', 'signage'], server().env)).code).toBe(4);
    const missing = await dvic(['demos', 'start', 'no-such-demo'], server().env);
    expect([missing.code, missing.stderr]).toEqual([1, 'dvic: no demo named no-such-demo (dvic demos lists them)\n']);
  });
});
