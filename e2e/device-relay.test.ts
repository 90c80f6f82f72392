// The agent's keepalive relay: a shell script on a node reports with one curl line to the local
// agent, which forwards it to the real server (real agent process, real curl).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceDetailView } from '@dvic/protocol';
import { call, enroll, signIn, type Api } from './support/api.js';
import { freePort, startAgent, startServer, stopAll, tempDir, waitFor, writeAgentConfig, type ServerProcess } from './support/processes.js';

const run = promisify(execFile);
let server: ServerProcess;
let api: Api;
let relay: string;

/** curl as a script on the node would call it: status code and body. */
async function curl(...args: string[]): Promise<{ code: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-m', '5', '-o', '-', '-w', '\n%{http_code}', ...args]);
  const at = stdout.lastIndexOf('\n');
  return { code: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
}

beforeAll(async () => {
  server = await startServer({ env: { DVIC_LOCAL_AGENT: '0' } });
  api = await signIn(server.baseUrl);
  const { config } = await enroll(api, 'relay-node');
  const port = await freePort();
  relay = `http://127.0.0.1:${port}`;
  startAgent(writeAgentConfig(tempDir(), config, { keepalive_port: port }));
  await waitFor(async () => (await curl(`${relay}/ping/nothing`).catch(() => ({ code: 0 }))).code === 404, 20_000, 'the relay listening');
});
afterAll(async () => { await stopAll(); });

describe('agent keepalive relay', () => {
  it('forwards the three URL shapes to the server and returns its answers', async () => {
    const { device, token } = await call(api.POST('/api/v1/devices', { body: { name: 'backup-cron' } }));
    const shown = async () => (await call(api.GET('/api/v1/devices/{id}', { params: { path: { id: device.id } } }))).device as DeviceDetailView;
    expect(await curl('-f', '-X', 'POST', `${relay}/api/v1/devices/${token}/keepalive`)).toEqual({ code: 204, body: '' });
    expect((await curl('-H', 'content-type: application/json', '-d', '{"status":"ok","message":"nightly backup done","numbers":{"files":42}}', `${relay}/api/v1/devices/${token}/keepalive`)).code).toBe(204);
    await expect.poll(async () => (await shown()).numbers).toEqual({ files: 42 });
    expect(await curl('--data-binary', 'tar: disk full', `${relay}/ping/${token}/2`)).toEqual({ code: 200, body: 'OK' });
    await expect.poll(async () => (await shown()).status).toBe('down');
    expect((await shown()).last_body).toBe('tar: disk full');
    expect(await curl(`${relay}/api/push/${token}?status=up&msg=back&ping=3`)).toEqual({ code: 200, body: '{"ok":true}' });
    expect(await shown()).toMatchObject({ status: 'up', last_message: 'back', ping_count: 4 });
  });

  it('passes the server\'s refusals through and refuses what is not a keepalive', async () => {
    expect((await curl('-X', 'POST', `${relay}/api/v1/devices/dvk_unknown/keepalive`)).code).toBe(404);
    const bad = await curl('-X', 'POST', '-d', '{"rssi":"x"}', `${relay}/api/v1/devices/dvk_unknown/keepalive`);
    expect(bad.code).toBe(400);
    expect(JSON.parse(bad.body).error.message).toMatch(/rssi/);
    expect((await curl(`${relay}/api/v1/nodes`)).code).toBe(404);
    expect((await curl('--data-binary', 'x'.repeat(11 * 1024), `${relay}/api/v1/devices/dvk_x/keepalive`)).code).toBe(413);
  });
});
