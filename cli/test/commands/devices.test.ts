// `dvic devices`, run in-process against a real server on loopback; pings sent with fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../../server/test/support/test-server.js';
import { startDvic } from '../support/run-cli.js';

let server: TestServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startTestServer();
  env = { DVIC_URL: server.baseUrl, DVIC_TOKEN: (await server.api('POST', '/api/v1/tokens', { name: 'cli' })).json().token };
});
afterAll(async () => { await server.close(); });

const dvic = (...args: string[]) => startDvic(args, env).done;

describe('dvic devices', () => {
  it('adds a device (token and URLs shown once), lists it with its status, pauses, resumes and removes it', async () => {
    const added = await dvic('devices', 'add', 'esp32-lamp', '--period', '30', '--grace', '10', '--label', 'room=hall');
    expect(added.code, added.stderr).toBe(0);
    const token = /token: (dvk_\S+)/.exec(added.stdout)![1]!;
    expect(added.stdout).toContain(`${server.baseUrl}/ping/${token}`);
    expect(added.stdout).toContain(`${server.baseUrl}/api/push/${token}?status=up`);
    expect(added.stdout).toContain(`${server.baseUrl}/api/v1/devices/${token}/keepalive`);
    expect((await fetch(`${server.baseUrl}/api/v1/devices/${token}/keepalive`, { method: 'POST', body: '{"message":"lamp on"}' })).status).toBe(204);
    const list = await dvic('devices');
    expect(list.stdout).toMatch(/^NAME\s+STATUS\s+LAST SEEN\s+PERIOD\s+PINGS\s+MESSAGE\n/);
    expect(list.stdout).toMatch(/esp32-lamp\s+up\s+\S+.*\s+30\+10s\s+1\s+lamp on/);
    expect((await dvic('devices', 'pause', 'esp32-lamp')).stdout).toBe('esp32-lamp: paused\n');
    expect((await dvic('devices', 'resume', 'esp32-lamp')).stdout).toBe('esp32-lamp: new\n');
    const json = JSON.parse((await dvic('devices', 'list', '--json')).stdout);
    expect(json).toEqual([expect.objectContaining({ name: 'esp32-lamp', labels: { room: 'hall' }, status: 'new' })]);
    const urls = await dvic('devices', 'urls', 'esp32-lamp');
    expect(urls.stdout).toContain(`${server.baseUrl}/ping/<token>`);
    const rotated = await dvic('devices', 'urls', 'esp32-lamp', '--new-token');
    const fresh = /token: (dvk_\S+)/.exec(rotated.stdout)![1]!;
    expect((await fetch(`${server.baseUrl}/ping/${token}`)).status).toBe(404);
    expect((await fetch(`${server.baseUrl}/ping/${fresh}`)).status).toBe(200);
    expect((await dvic('devices', 'remove', 'esp32-lamp')).stdout).toBe('Removed esp32-lamp\n');
    expect((await dvic('devices')).stdout).toMatch(/No devices/);
  });

  it('says what is wrong: unknown device (1), bad period or action (2)', async () => {
    const unknown = await dvic('devices', 'pause', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no device "nope"/);
    expect((await dvic('devices', 'add', 'x', '--period', 'soon')).code).toBe(2);
    expect((await dvic('devices', 'fly')).code).toBe(2);
  });
});
