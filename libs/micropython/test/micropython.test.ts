// dvic_keepalive.py under CPython (shims of urequests, network, machine) against a real server.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceDetailView, DevicePingView } from '@dvic/protocol';
import { startTestServer, type TestServer } from '../../../server/test/support/test-server.js';

const run = promisify(execFile);
const libDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

describe('dvic_keepalive (MicroPython) under CPython', () => {
  it('passes its unit tests and reaches the real server: up, then down on a fail status', async () => {
    const { device, token } = (await server.api('POST', '/api/v1/devices', { name: 'pico-w' })).json<{ device: { id: string }; token: string }>();
    const result = await run('/usr/bin/python3', ['-m', 'unittest', '-v', 'tests.test_dvic_keepalive'], {
      cwd: libDir, env: { ...process.env, DVIC_TEST_URL: server.baseUrl, DVIC_TEST_TOKEN: token }, timeout: 60_000,
    });
    expect(result.stderr).toMatch(/Ran 4 tests[\s\S]*OK$/m);
    expect(result.stderr).not.toMatch(/skipped/);
    const shown = (await server.api('GET', `/api/v1/devices/${device.id}`)).json<{ device: DeviceDetailView }>().device;
    expect(shown).toMatchObject({ status: 'down', ping_count: 3, demo: 'mpy', last_message: 'sensor lost' });
    expect(shown.numbers).toMatchObject({ temp_c: 20, rssi: -67 });
    const pings = (await server.api('GET', `/api/v1/devices/${device.id}/pings`)).json<{ pings: DevicePingView[] }>().pings;
    expect(pings.at(-1)!.logs).toEqual([{ level: 'ERROR', message: 'sensor glitch', at: expect.any(Number) }]);
  });
});
