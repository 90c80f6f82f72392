// Keepalive devices over real HTTP: the REST contracts, each compatible URL shape with real curl,
// bad bodies, tokens stored as hashes, status changes on /api/v1/live.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceDetailView, DevicePingView, DeviceView } from '@dvic/protocol';
import { sha256Hex } from '../../src/services/tokens.js';
import { LiveRecorder } from '../support/live-recorder.js';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

const run = promisify(execFile);
let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { await server.close(); });

/** curl as a script or firmware would call it: status code and body. */
async function curl(...args: string[]): Promise<{ code: number; body: string }> {
  const { stdout } = await run('curl', ['-sS', '-m', '5', '-o', '-', '-w', '\n%{http_code}', ...args]);
  const at = stdout.lastIndexOf('\n');
  return { code: Number(stdout.slice(at + 1)), body: stdout.slice(0, at) };
}

async function addDevice(body: object = { name: 'esp32-hall' }): Promise<{ device: DeviceView; token: string }> {
  const res = await server.api('POST', '/api/v1/devices', body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

const device = async (id: string) => (await server.api('GET', `/api/v1/devices/${id}`)).json<{ device: DeviceDetailView }>().device;
const pings = async (id: string) => (await server.api('GET', `/api/v1/devices/${id}/pings`)).json<{ pings: DevicePingView[] }>().pings;

describe('devices REST API', () => {
  it('creates a device with defaults, shows its token once and keeps only its hash', async () => {
    const { device: created, token } = await addDevice({ name: 'esp32-hall', labels: { room: 'hall' } });
    expect(created).toMatchObject({ name: 'esp32-hall', labels: { room: 'hall' }, period_s: 60, grace_s: 30, status: 'new', last_seen: null, ping_count: 0 });
    expect(token).toMatch(/^dvk_[A-Za-z0-9_-]{43}$/);
    const row = server.app.db.prepare('SELECT token_hash FROM devices WHERE id = ?').get(created.id) as { token_hash: string };
    expect(row.token_hash).toBe(sha256Hex(token));
    const dump = JSON.stringify(server.app.db.prepare('SELECT * FROM devices').all());
    expect(dump).not.toContain(token);
    const list = (await server.api('GET', '/api/v1/devices')).json<{ devices: DeviceView[] }>().devices;
    expect(list).toEqual([expect.objectContaining({ id: created.id, status: 'new' })]);
    expect(JSON.stringify(list)).not.toContain(token);
    expect(await device('esp32-hall')).toMatchObject({ id: created.id, uptime_24h: null, transitions: [] });
  });

  it('refuses bad settings and duplicate names with a clear 400/409, unknown devices with 404', async () => {
    await addDevice({ name: 'a' });
    for (const body of [{ name: 'a' }, { name: 'b', period_s: 0 }, { name: 'c', grace_s: -1 }, { name: 'd', colour: 'red' }, { name: '../etc' }]) {
      const res = await server.api('POST', '/api/v1/devices', body);
      expect([400, 409], JSON.stringify(body)).toContain(res.statusCode);
      expect(res.json().error.message).toBeTruthy();
    }
    expect((await server.api('GET', '/api/v1/devices/nope')).statusCode).toBe(404);
    expect((await server.api('POST', '/api/v1/devices', { name: 'orphan', node: 'no-such-node' })).statusCode).toBe(404);
  });

  it('belongs to a node when given one (by name), and leaves it with null', async () => {
    const { node } = await server.enroll('pi-hall');
    const { device: d } = await addDevice({ name: 'sensor', node: 'pi-hall' });
    expect(d.node_id).toBe(node.id);
    expect((await server.api('PATCH', `/api/v1/devices/${d.id}`, { node: null })).json().device.node_id).toBeNull();
  });

  it('pauses, resumes, renames, rotates the token and removes', async () => {
    const { device: d, token } = await addDevice();
    expect((await server.api('POST', `/api/v1/devices/${d.id}/pause`)).json().device.status).toBe('paused');
    expect((await server.api('POST', `/api/v1/devices/${d.id}/resume`)).json().device.status).toBe('new');
    expect((await server.api('PATCH', `/api/v1/devices/${d.id}`, { name: 'esp32-b', period_s: 5 })).json().device).toMatchObject({ name: 'esp32-b', period_s: 5 });
    const rotated = (await server.api('POST', `/api/v1/devices/${d.id}/token`)).json<{ token: string }>();
    expect((await curl(`${server.baseUrl}/ping/${token}`)).code).toBe(404);
    expect((await curl(`${server.baseUrl}/ping/${rotated.token}`)).code).toBe(200);
    expect((await server.api('DELETE', `/api/v1/devices/${d.id}`)).statusCode).toBe(204);
    expect((await curl(`${server.baseUrl}/ping/${rotated.token}`)).code).toBe(404);
    expect((await server.api('GET', '/api/v1/devices')).json().devices).toEqual([]);
  });
});

describe('keepalive URLs (real curl)', () => {
  it('POST /api/v1/devices/{token}/keepalive: 204 with or without a body, fields stored', async () => {
    const { device: d, token } = await addDevice();
    const url = `${server.baseUrl}/api/v1/devices/${token}/keepalive`;
    expect(await curl('-X', 'POST', url)).toEqual({ code: 204, body: '' });
    const body = { status: 'ok', message: 'all good', uptime_s: 12, rssi: -61, free_heap: 123456, firmware: '1.2.0', demo: 'lamp', numbers: { temp_c: 21.5 }, logs: [{ level: 'warn', message: 'wifi retry' }] };
    expect((await curl('-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify(body), url)).code).toBe(204);
    // Numeric fields may also come at the top level.
    expect((await curl('-d', '{"temperature":21.5,"humidity":40}', url)).code).toBe(204);
    expect((await pings(d.id))[0]!.numbers).toEqual({ temperature: 21.5, humidity: 40 });
    // Any content type: curl -d sends a form type by default.
    expect((await curl('-d', '{"status":"ok","numbers":{"x":1}}', url)).code).toBe(204);
    const shown = await device(d.id);
    expect(shown).toMatchObject({ status: 'up', ping_count: 4, last_message: 'all good', firmware: '1.2.0', demo: 'lamp', numbers: { x: 1 }, last_body: '{"status":"ok","numbers":{"x":1}}' });
    const [, , second] = await pings(d.id);
    expect(second).toMatchObject({ kind: 'ok', source: 'keepalive', numbers: { temp_c: 21.5, uptime_s: 12, rssi: -61, free_heap: 123456 }, logs: [{ level: 'WARN', message: 'wifi retry' }] });
  });

  it('the keepalive with Authorization: Bearer', async () => {
    const { device: d, token } = await addDevice();
    expect((await curl('-X', 'POST', '-H', `authorization: Bearer ${token}`, `${server.baseUrl}/api/v1/devices/keepalive`)).code).toBe(204);
    expect((await curl('-X', 'POST', '-H', 'authorization: Bearer dvk_wrong', `${server.baseUrl}/api/v1/devices/keepalive`)).code).toBe(404);
    expect((await curl('-X', 'POST', `${server.baseUrl}/api/v1/devices/keepalive`)).code).toBe(401);
    expect((await device(d.id)).ping_count).toBe(1);
  });

  it('bad input: 400 with a clear message, 404 unknown token, 413 over 10 kB; nothing stored', async () => {
    const { device: d, token } = await addDevice();
    const url = `${server.baseUrl}/api/v1/devices/${token}/keepalive`;
    const cases: [string, RegExp][] = [
      ['{"status":', /JSON/], ['[1,2]', /object/], ['{"rssi":"strong"}', /rssi/], ['{"colour":"red"}', /colour must be number/],
      [JSON.stringify({ numbers: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`n${i}`, i])), ...Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`t${i}`, i])) }), /at most 50 numeric fields/],
      [JSON.stringify({ numbers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`n${i}`, i])) }), /numbers/],
      [JSON.stringify({ logs: Array.from({ length: 21 }, () => ({ level: 'INFO', message: 'x' })) }), /logs/],
      [JSON.stringify({ logs: [{ level: 'LOUD', message: 'x' }] }), /level/],
    ];
    for (const [body, message] of cases) {
      const res = await curl('-H', 'content-type: application/json', '-d', body, url);
      expect(res.code, body).toBe(400);
      expect(JSON.parse(res.body).error.message, body).toMatch(message);
    }
    const unknown = await curl('-X', 'POST', `${server.baseUrl}/api/v1/devices/dvk_unknown/keepalive`);
    expect(unknown.code).toBe(404);
    expect(JSON.parse(unknown.body).error.message).toMatch(/no device has this token/);
    const big = await curl('-H', 'content-type: application/json', '--data-binary', JSON.stringify({ message: 'x'.repeat(1000), pad: 'y'.repeat(10 * 1024) }), url);
    expect(big.code).toBe(413);
    expect(JSON.parse(big.body).error.code).toBe('payload_too_large');
    expect((await device(d.id))).toMatchObject({ ping_count: 0, status: 'new' });
  });

  it('Healthchecks: /ping/<token>, /start, /fail, /<exit>, /log with HEAD, GET and POST; body kept; run duration', async () => {
    const { device: d, token } = await addDevice();
    const ping = `${server.baseUrl}/ping/${token}`;
    expect(await curl(ping)).toEqual({ code: 200, body: 'OK' });
    expect((await curl('-I', ping)).code).toBe(200);
    expect((await device(d.id)).status).toBe('up');
    expect((await curl(`${ping}/start`)).code).toBe(200);
    expect((await curl('--data-binary', 'backup: 3 files\nok', `${ping}/0`)).code).toBe(200);
    const [success, start] = await pings(d.id);
    expect(start).toMatchObject({ kind: 'start', source: 'ping' });
    expect(success).toMatchObject({ kind: 'ok', status: 'exit 0', body: 'backup: 3 files\nok' });
    expect(success!.duration_ms).toBeGreaterThanOrEqual(0);
    expect((await curl('-X', 'POST', '-H', 'content-type: text/plain', '--data-binary', 'disk full', `${ping}/fail`)).code).toBe(200);
    expect(await device(d.id)).toMatchObject({ status: 'down', last_body: 'disk full' });
    expect((await curl(`${ping}/log`, '--data-binary', 'just a note')).code).toBe(200);
    expect((await device(d.id)).status).toBe('down');
    expect((await curl(ping)).code).toBe(200);
    expect((await curl(`${ping}/3`)).code).toBe(200);
    const failed = await device(d.id);
    expect(failed.status).toBe('down');
    expect(failed.transitions[0]).toMatchObject({ from: 'up', to: 'down', reason: 'exit status 3' });
    expect((await curl(`${ping}/256`)).code).toBe(400);
    // Any body type is a log, even one claiming to be JSON.
    expect((await curl('-H', 'content-type: application/json', '--data-binary', '{not json', `${ping}/log`)).code).toBe(200);
    expect((await curl(`${server.baseUrl}/ping/nope`)).code).toBe(404);
    // Body beyond 10 kB: accepted, its first 10 kB kept.
    expect((await curl('--data-binary', 'z'.repeat(20_000), ping)).code).toBe(200);
    expect((await device(d.id)).last_body).toHaveLength(10 * 1024);
    // Up to 100 kB is taken; beyond, 413 and nothing kept (on /api/push too).
    const count = (await device(d.id)).ping_count;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-ping-'));
    const file = (bytes: number) => { const f = path.join(dir, `${bytes}.txt`); fs.writeFileSync(f, 'z'.repeat(bytes)); return `@${f}`; };
    try {
      expect((await curl('--data-binary', file(100 * 1024), ping)).code).toBe(200);
      const huge = await curl('--data-binary', file(100 * 1024 + 1), ping);
      expect(huge.code).toBe(413);
      expect(JSON.parse(huge.body).error.code).toBe('payload_too_large');
      expect((await curl('--data-binary', file(200 * 1024), `${server.baseUrl}/api/push/${token}`)).code).toBe(413);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect((await device(d.id)).ping_count).toBe(count + 1);
  });

  it('numbers of pings go to the metric history: GET /api/v1/devices/{id}/metrics by id or name; removed with the device', async () => {
    const { device: d, token } = await addDevice({ name: 'esp32-temp' });
    const since = Date.now() - 1000; // a short range: raw samples, not means of a few seconds
    const url = `${server.baseUrl}/api/v1/devices/${token}/keepalive`;
    for (const [temp, rssi] of [[21.5, -60], [22, -61], [22.5, -59]]) {
      expect((await curl('-H', 'content-type: application/json', '-d', JSON.stringify({ temp_c: temp, rssi }), url)).code).toBe(204);
    }
    expect((await curl(`${server.baseUrl}/api/push/${token}?status=up&ping=42`)).code).toBe(200);
    const history = async (ref: string, query = '') => server.api('GET', `/api/v1/devices/${ref}/metrics?from=${since}${query}`);
    const all = await history(d.id);
    expect(all.statusCode, all.body).toBe(200);
    const series = all.json<{ series: { name: string; points: [number, number][] }[] }>().series;
    expect(series.map((s) => [s.name, s.points.map((p) => p[1])])).toEqual([['ping', [42]], ['rssi', [-60, -61, -59]], ['temp_c', [21.5, 22, 22.5]]]);
    const temp = (await history('esp32-temp', '&series=temp_c')).json<{ series: { name: string }[] }>().series;
    expect(temp.map((s) => s.name)).toEqual(['temp_c']);
    expect((await history('nope')).statusCode).toBe(404);
    expect((await server.api('DELETE', `/api/v1/devices/${d.id}`)).statusCode).toBeLessThan(300);
    expect(await server.app.metricStore.seriesNames(`device:${d.id}`)).toEqual([]);
  });

  it('Uptime Kuma push: /api/push/<token>?status=up|down&msg=...&ping=...', async () => {
    const { device: d, token } = await addDevice();
    const push = `${server.baseUrl}/api/push/${token}`;
    expect(await curl(`${push}?status=up&msg=OK&ping=42`)).toEqual({ code: 200, body: '{"ok":true}' });
    expect(await device(d.id)).toMatchObject({ status: 'up', last_message: 'OK', numbers: { ping: 42 } });
    expect((await curl(`${push}?status=down&msg=sensor%20lost`)).code).toBe(200);
    expect(await device(d.id)).toMatchObject({ status: 'down', last_message: 'sensor lost' });
    expect((await curl(push)).code).toBe(200);
    expect((await device(d.id)).status).toBe('up');
    const unknown = await curl(`${server.baseUrl}/api/push/nope?status=up`);
    expect(unknown.code).toBe(404);
    expect(JSON.parse(unknown.body)).toMatchObject({ ok: false });
  });

  it('takes pings from a page of another origin (the token is the credential), but not the device API', async () => {
    const { token } = await addDevice();
    expect((await curl('-H', 'origin: https://evil.example', '-d', 'x', `${server.baseUrl}/ping/${token}`)).code).toBe(200);
    expect((await curl('-H', 'origin: https://evil.example', '-H', `cookie: ${server.cookie}`, '-H', 'content-type: application/json', '-d', '{"name":"x"}', `${server.baseUrl}/api/v1/devices`)).code).toBe(403);
    expect((await curl('-H', `cookie: ${server.cookie}`, '-d', 'name=x', `${server.baseUrl}/api/v1/devices`)).code).toBe(415);
  });
});

describe('device status on /api/v1/live', () => {
  it('sends each status change at once: new -> up -> late -> down, then up again', async () => {
    const { device: d, token } = await addDevice({ name: 'fast', period_s: 1, grace_s: 1 });
    const ws = new WebSocket(server.liveUrl, { headers: { cookie: server.cookie } });
    const live = new LiveRecorder(ws);
    await new Promise((r) => ws.once('open', r));
    await waitFor(() => live.first('snapshot'), 5000, 'snapshot');
    expect((await curl(`${server.baseUrl}/ping/${token}`)).code).toBe(200);
    const statuses = () => live.all('device.status').filter((m) => m.data.device_id === d.id).map((m) => m.data.status);
    await waitFor(() => statuses().includes('down'), 10_000, 'down');
    expect(statuses()).toEqual(['up', 'late', 'down']);
    await waitFor(() => live.all('devices.seen').some((m) => m.data.devices.some((s) => s.device_id === d.id)), 5000, 'devices.seen');
    expect((await curl(`${server.baseUrl}/ping/${token}`)).code).toBe(200);
    await waitFor(() => statuses().length === 4, 5000, 'up again');
    expect(statuses()[3]).toBe('up');
    const shown = await device(d.id);
    expect(shown.transitions.map((t) => t.to)).toEqual(['up', 'down', 'late', 'up']);
    const [, down, late] = shown.transitions;
    expect(down!.at - late!.at).toBe(1000);
    ws.close();
  });
});
