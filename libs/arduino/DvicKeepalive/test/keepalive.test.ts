// The Arduino library on Linux: its core compiled with g++ and unit-tested, the library itself over a
// POSIX socket shim against the real server, and the example sketches compiled against the shim's
// Arduino headers. (WiFi, TLS and deep sleep on a real board cannot be checked here.)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceDetailView, DevicePingView } from '@dvic/protocol';
import { startTestServer, type TestServer } from '../../../../server/test/support/test-server.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const FLAGS = ['-std=c++11', '-Wall', '-Wextra', '-Werror', '-I', path.join(here, 'shim'), '-I', path.join(here, '../src')];
let out: string;
let server: TestServer;

beforeAll(async () => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-arduino-'));
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
  fs.rmSync(out, { recursive: true, force: true });
});

const compile = (source: string, binary: string, extra: string[] = []) => run('g++', [...FLAGS, ...extra, source, '-o', path.join(out, binary)]);

describe('DvicKeepalive (Arduino) on Linux', () => {
  it('core: message building, log buffering, backoff and retry', async () => {
    await compile(path.join(here, 'core_test.cpp'), 'core_test');
    const { stdout } = await run(path.join(out, 'core_test'));
    expect(stdout).toBe('core tests passed\n');
  });

  it('the library over POSIX sockets reaches the real server: numbers, logs, firmware stored', async () => {
    const created = (await server.api('POST', '/api/v1/devices', { name: 'esp32-shim' })).json<{ device: { id: string }; token: string }>();
    await compile(path.join(here, 'posix_e2e.cpp'), 'posix_e2e');
    const { stdout } = await run(path.join(out, 'posix_e2e'), [server.baseUrl, created.token], { timeout: 20_000 });
    expect(stdout).toBe('204\n0 204\n');
    const device = (await server.api('GET', `/api/v1/devices/${created.device.id}`)).json<{ device: DeviceDetailView }>().device;
    expect(device).toMatchObject({ status: 'up', ping_count: 2, firmware: 'posix-shim', demo: 'e2e', numbers: { temp_c: 21.5, rssi: -61, free_heap: 180000 } });
    const pings = (await server.api('GET', `/api/v1/devices/${created.device.id}/pings`)).json<{ pings: DevicePingView[] }>().pings;
    expect(pings[1]!.logs).toEqual([{ level: 'WARN', message: 'first "line"', at: expect.any(Number) }, { level: 'INFO', message: 'second line', at: expect.any(Number) }]);
    expect(pings[0]!.logs).toEqual([]); // sent once
    // A wrong token: the server says 404 and the library reports it.
    const wrong = await run(path.join(out, 'posix_e2e'), [server.baseUrl, 'dvk_wrong'], { timeout: 20_000 }).catch((e: { stdout: string; code: number }) => e);
    expect(wrong).toMatchObject({ code: 1, stdout: expect.stringMatching(/^404\n/) });
  });

  it('the example sketches compile against the shim Arduino headers', async () => {
    for (const sketch of ['Keepalive', 'DeepSleep']) {
      const source = path.join(here, `../examples/${sketch}/${sketch}.ino`);
      await run('g++', [...FLAGS, '-x', 'c++', '-include', 'Arduino.h', '-c', source, '-o', path.join(out, `${sketch}.o`)]);
      expect(fs.statSync(path.join(out, `${sketch}.o`)).size).toBeGreaterThan(0);
    }
  });
});
