// dvic_keepalive() of libs/c/dvic_log.h, compiled with gcc (C99) and g++ (C++11) with every
// warning an error, against a real server.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceDetailView } from '@dvic/protocol';
import { startTestServer, type TestServer } from '../../../server/test/support/test-server.js';

const run = promisify(execFile);
const headerDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROGRAM = `#include "dvic_log.h"
int main(int argc, char **argv) {
  printf("%d\\n", dvic_keepalive(NULL, NULL, NULL));
  printf("%d\\n", dvic_keepalive(NULL, "fail", argc > 1 ? argv[1] : NULL));
  printf("%d\\n", dvic_keepalive("http://127.0.0.1:1/api/v1/devices/x/keepalive", NULL, NULL));
  printf("%d\\n", dvic_keepalive("https://example.org/ping/x", NULL, NULL));
  return 0;
}
`;
let server: TestServer;
let dir: string;
beforeAll(async () => {
  server = await startTestServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-c-keepalive-'));
});
afterAll(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('dvic_keepalive() in C and C++', () => {
  for (const [compiler, flags, ext] of [['gcc', ['-std=c99', '-pedantic'], 'c'], ['g++', ['-std=c++11', '-pedantic'], 'cpp']] as const) {
    it(`${compiler}: sends a heartbeat and a failure with a message that needs escaping; -1 when unreachable`, async () => {
      const { device, token } = (await server.api('POST', '/api/v1/devices', { name: `linux-${ext}` })).json<{ device: { id: string }; token: string }>();
      const source = path.join(dir, `k.${ext}`);
      fs.writeFileSync(source, PROGRAM);
      await run(compiler, [...flags, '-Wall', '-Wextra', '-Werror', '-I', headerDir, source, '-o', path.join(dir, compiler), '-pthread']);
      const url = `${server.baseUrl}/api/v1/devices/${token}/keepalive`;
      const { stdout } = await run(path.join(dir, compiler), ['disk "full"\n'], { env: { DVIC_KEEPALIVE_URL: url }, timeout: 20_000 });
      expect(stdout).toBe('204\n204\n-1\n-1\n');
      const shown = (await server.api('GET', `/api/v1/devices/${device.id}`)).json<{ device: DeviceDetailView }>().device;
      expect(shown).toMatchObject({ status: 'down', ping_count: 2, last_message: 'disk "full"\n' });
      const unknown = await run(path.join(dir, compiler), [], { env: { DVIC_KEEPALIVE_URL: `${server.baseUrl}/api/v1/devices/dvk_nope/keepalive` } });
      expect(unknown.stdout.split('\n').slice(0, 2)).toEqual(['404', '404']);
    });
  }
});
