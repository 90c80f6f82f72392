import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { upgrade } from '../support/upgrade.js';

let server: TestServer;
beforeEach(async () => { server = await startTestServer(); });
afterEach(async () => { await server.close(); });

const token = async (role: string) => (await server.api('POST', '/api/v1/tokens', { name: `wall-${role}`, role })).json().token as string;
const kiosk = (body: object) => server.app.inject({ method: 'POST', url: '/api/v1/auth/kiosk', payload: body });

describe('POST /api/v1/auth/kiosk', () => {
  it('trades a viewer token for a cookie that reads the lab (REST and live) but changes nothing', async () => {
    const answer = await kiosk({ token: await token('viewer') });
    expect(answer.statusCode).toBe(200);
    const cookie = answer.cookies.find((c) => c.name === 'dvic_kiosk')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    const headers = { cookie: `dvic_kiosk=${cookie.value}` };
    expect((await server.app.inject({ method: 'GET', url: '/api/v1/demos', headers })).statusCode).toBe(200);
    const change = await server.app.inject({ method: 'POST', url: '/api/v1/demo-expectations', headers: { ...headers, 'content-type': 'application/json' }, payload: { label: 'room=hall', name: 'kiosk' } });
    expect(change.statusCode).toBe(403);
    const live = await upgrade(server.liveUrl, { ...headers, origin: server.baseUrl });
    expect(live.status).toBe(101);
    if ('socket' in live) live.socket.close();
  });

  it('refuses a token that could change things, and a wrong one', async () => {
    const operator = await kiosk({ token: await token('operator') });
    expect(operator.statusCode).toBe(403);
    expect(operator.json().error.message).toMatch(/read-only token/);
    expect((await kiosk({ token: 'nope' })).statusCode).toBe(401);
    expect((await kiosk({ token: '' })).statusCode).toBe(400);
    expect((await kiosk({})).statusCode).toBe(400);
  });
});
