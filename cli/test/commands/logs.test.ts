import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../server/test/support/test-server.js';
import { serverForTests } from '../support/cli-server.js';
import { SimulatedDemo } from '../support/demo-logs.js';
import { dvic, startDvic } from '../support/run-cli.js';

const server = serverForTests();

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** The numbers of the "line N" lines printed, in the order printed. */
const lineNumbers = (out: string) => [...out.matchAll(/ line (\d+)$/gm)].map((m) => Number(m[1]));
const lines = (from: number, count: number): ['INFO', string][] => range(from, from + count - 1).map((i) => ['INFO', `line ${i}`]);

async function demoOn(node: string, name: string) {
  const { agent, reconnect } = await server().agent(node);
  const demo = new SimulatedDemo(agent, name);
  demo.state(true);
  return { demo, reconnect };
}

describe('dvic logs', () => {
  it('searches stored logs by node, demo, level and text, oldest first', async () => {
    const { demo } = await demoOn('cli-logger', 'kiosk');
    await demo.write([['INFO', 'booted'], ['WARN', 'disk almost full'], ['ERROR', 'camera lost']]);
    const all = (await dvic(['logs', 'cli-logger'], server().env)).stdout.trim().split('\n').map((l) => l.replace(/^\S+ \S+ /, ''));
    expect(all).toEqual(['cli-logger/kiosk INFO  booted', 'cli-logger/kiosk WARN  disk almost full', 'cli-logger/kiosk ERROR camera lost']);
    const json = (await dvic(['logs', '--demo', 'kiosk', '--level', 'warn', '--json'], server().env)).stdout.trim().split('\n');
    expect(json.map((l) => JSON.parse(l) as { message: string; node: string }).map((r) => [r.node, r.message])).toEqual([['cli-logger', 'disk almost full'], ['cli-logger', 'camera lost']]);
    expect((await dvic(['logs', '-q', 'camera'], server().env)).stdout).toMatch(/ERROR camera lost\n$/);
  });

  it('prints structured fields after the message and filters by them (--field or field.NAME=VALUE)', async () => {
    const { demo } = await demoOn('cli-fields', 'cam');
    const ts = new Date().toISOString();
    await demo.write([
      { ts, level: 'INFO', message: 'camera ready', fields: { camera: 'usb-0', fps: 30 } },
      { ts, level: 'INFO', message: 'camera ready', fields: { camera: 'usb-1', note: 'two words' } },
    ]);
    const out = (await dvic(['logs', 'cli-fields'], server().env)).stdout;
    expect(out).toMatch(/cli-fields\/cam INFO {2}camera ready camera=usb-0 fps=30\n/);
    expect(out).toMatch(/camera ready camera=usb-1 note="two words"\n$/);
    for (const args of [['--field', 'camera=usb-0'], ['field.camera=usb-0'], ['cli-fields', 'field.camera=usb-0', '--field', 'fps=30']]) {
      const lines = (await dvic(['logs', ...args], server().env)).stdout.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(/camera=usb-0/);
    }
    const bad = await dvic(['logs', '--field', 'nonsense'], server().env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/field filter "nonsense" is not NAME=VALUE/);
  });

  it('shows a record standing for lost lines as a warning with their count', async () => {
    const { demo } = await demoOn('cli-lossy', 'rotator');
    await demo.write([{ ts: new Date().toISOString(), level: 'WARN', message: 'a rotated file was deleted before it was read', lost_lines: 1234 }]);
    expect((await dvic(['logs', 'cli-lossy'], server().env)).stdout).toMatch(/cli-lossy\/rotator WARN {2}⚠ 1,234 lines lost: a rotated file was deleted before it was read\n$/);
  });

  it('follows while lines are being written: each line once, in order, across the switch from history to live', async () => {
    const { demo } = await demoOn('cli-stream', 'stream');
    let written = 0;
    let writing = true;
    const writer = (async () => {
      for (; writing && written < 20_000; written += 5) await demo.write(lines(written, 5));
    })();
    await waitFor(() => written >= 50, 10_000, 'lines stored before following');
    const startedAt = written;
    const follow = startDvic(['logs', 'cli-stream', '-f', '-n', '1000'], server().env);
    await waitFor(() => (lineNumbers(follow.stdout()).at(-1) ?? 0) >= startedAt + 200, 20_000, 'lines written after following started');
    writing = false;
    await writer;
    await waitFor(() => lineNumbers(follow.stdout()).at(-1) === written - 1, 10_000, 'the last line');
    follow.interrupt();
    expect((await follow.done).code).toBe(0);
    const printed = lineNumbers(follow.stdout());
    expect(printed[0]).toBeLessThan(startedAt); // history came first...
    expect(printed).toEqual(range(printed[0]!, written - 1)); // ...then live, with no gap and no line twice
  });

  it('resumes after the last line it printed when the server restarts: no gap, no duplicate', async () => {
    const { demo, reconnect } = await demoOn('cli-restart', 'steady');
    const follow = startDvic(['logs', 'cli-restart', '-f'], server().env);
    await demo.write(lines(0, 20));
    await waitFor(() => lineNumbers(follow.stdout()).at(-1) === 19, 10_000, 'the first lines');
    await server().server.restart();
    const again = demo.reconnected(await reconnect());
    await again.write(lines(20, 20));
    await waitFor(() => lineNumbers(follow.stdout()).at(-1) === 39, 20_000, 'the lines written after the restart');
    follow.interrupt();
    expect((await follow.done).code).toBe(0);
    expect(lineNumbers(follow.stdout())).toEqual(range(0, 39));
    expect(follow.stderr()).toMatch(/^dvic: live connection lost \((the server is restarting|the connection dropped)\), retrying…$/m);
  });

  it('with --since matching nothing, follows only lines newer than the last stored one', async () => {
    const { demo } = await demoOn('cli-since', 'quiet');
    await demo.write(lines(0, 3));
    const follow = startDvic(['logs', 'cli-since', '-f', '--since', new Date(Date.now() + 3_600_000).toISOString()], server().env);
    await waitFor(() => follow.stdout() === '' && server().server.app.liveHub.count > 0, 5000, 'following');
    await demo.write(lines(3, 2));
    await waitFor(() => lineNumbers(follow.stdout()).length === 2, 5000, 'the new lines');
    follow.interrupt();
    expect(lineNumbers((await follow.done).stdout)).toEqual([3, 4]);
  });
});
