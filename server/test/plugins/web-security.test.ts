// Cross-site WebSocket hijacking and CSRF: a page of another origin (same site, so the browser
// sends the session cookie) must not open a socket or change anything.
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { connectAgent } from '../support/simulated-agent.mjs';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { upgrade } from '../support/upgrade.js';

let server: TestServer;
afterEach(async () => { await server?.close(); });

const FOREIGN = 'http://127.0.0.1:1';

interface AgentMessage { type: string }
interface OpenApiDoc { paths: Record<string, Record<string, { 'x-role'?: string; 'x-credential'?: string }>> }

async function terminalNode() {
  const { config } = await server.enroll('pi');
  const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware', 'exec', 'terminal'] });
  return { agent, nodeId: config.node_id as string };
}

const audit = async (query: string) => (await server.api('GET', `/api/v1/audit?${query}`)).json().entries as { action: string; username: string | null; outcome: string; details: Record<string, unknown> }[];

describe('WebSocket upgrades', () => {
  it('refuses an upgrade from a foreign page (live, terminal, agent) with 403 origin_refused, and audits it with the user', async () => {
    server = await startTestServer();
    const { agent, nodeId } = await terminalNode();
    const ws = server.baseUrl.replace('http', 'ws');
    const targets = [server.liveUrl, `${ws}/api/v1/nodes/${nodeId}/terminal`, server.agentUrl];
    for (const url of targets) {
      for (const origin of [FOREIGN, 'null', `${server.baseUrl}.evil.example`, 'http://localhost:1']) {
        const res = await upgrade(url, { cookie: server.cookie, origin });
        expect(res.status, `${url} from ${origin}`).toBe(403);
        expect('body' in res && res.body.error?.code).toBe('origin_refused');
      }
    }
    expect(agent.messages.filter((m: AgentMessage) => m.type === 'terminal.open')).toEqual([]);
    const refused = await audit('action=origin.refused');
    expect(refused).toHaveLength(12);
    expect(refused[0]).toMatchObject({ username: 'admin', outcome: 'denied', details: { origin: 'http://localhost:1' } });
    agent.close();
  });

  it("accepts upgrades with no Origin (CLI, agents) and from the server's own origin, DVIC_PUBLIC_URL and DVIC_ALLOWED_ORIGINS", async () => {
    server = await startTestServer({ DVIC_PUBLIC_URL: 'https://dvic.example.org/', DVIC_ALLOWED_ORIGINS: 'http://localhost:5173, https://wall.example.org' });
    for (const origin of [undefined, server.baseUrl, 'https://dvic.example.org', 'http://localhost:5173', 'https://wall.example.org']) {
      const res = await upgrade(server.liveUrl, { cookie: server.cookie, ...(origin ? { origin } : {}) });
      expect(res.status, `from ${origin}`).toBe(101);
      (res as { socket: WebSocket }).socket.close();
    }
    // Agents never send an Origin: on their endpoint any Origin is a browser's, even the server's own.
    expect((await upgrade(server.agentUrl, { origin: server.baseUrl })).status).toBe(403);
  });

  it("takes the server's own origin from forwarded headers only with DVIC_TRUST_PROXY", async () => {
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'dvic.example.org', origin: 'https://dvic.example.org' };
    server = await startTestServer();
    expect((await upgrade(server.liveUrl, { cookie: server.cookie, ...forwarded })).status).toBe(403);
    await server.close();
    server = await startTestServer({ DVIC_TRUST_PROXY: '127.0.0.1' });
    const res = await upgrade(server.liveUrl, { cookie: server.cookie, ...forwarded });
    expect(res.status).toBe(101);
    (res as { socket: WebSocket }).socket.close();
  });
});

describe('state-changing requests', () => {
  it('refuses every state-changing route from a foreign Origin (403) and without a JSON body (415), before its handler runs', async () => {
    server = await startTestServer();
    const doc = (await server.api('GET', '/api/v1/openapi.json')).json() as OpenApiDoc;
    // Device keepalives carry their own secret (x-credential: device-token): no cookie to forge.
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods)
      .filter((m) => m !== 'get' && methods[m]!['x-credential'] !== 'device-token').map((m) => [m.toUpperCase(), path.replace(/\{[^}]+\}/g, '1')] as const));
    expect(routes.length).toBeGreaterThan(10);
    const nodesBefore = (await server.api('GET', '/api/v1/nodes')).json().nodes.length;
    for (const [method, url] of routes) {
      const inject = (headers: Record<string, string>, payload?: string) => server.app.inject({ method: method as 'POST', url, headers: { cookie: server.cookie, ...headers }, payload });
      const foreign = await inject({ origin: FOREIGN, 'content-type': 'application/json' }, '{"name":"csrf"}');
      expect(foreign.statusCode, `${method} ${url} from a foreign page`).toBe(403);
      expect(foreign.json().error.code).toBe('origin_refused');
      // What a cross-site <form> can send: urlencoded, multipart or text/plain; or nothing at all.
      for (const [type, body] of [['application/x-www-form-urlencoded', 'name=csrf'], ['text/plain', '{"name":"csrf"}'], ['multipart/form-data; boundary=x', '--x--'], [undefined, undefined]]) {
        const res = await inject(type ? { 'content-type': type } : {}, body);
        expect(res.statusCode, `${method} ${url} as ${type}`).toBe(415);
        expect(res.json().error.code).toBe('unsupported_media_type');
      }
    }
    expect((await server.api('GET', '/api/v1/nodes')).json().nodes.length).toBe(nodesBefore);
    expect((await server.api('GET', '/api/v1/auth/me')).statusCode).toBe(200); // logout did not run
  });

  it('lets a same-origin page and a script without Origin change things', async () => {
    server = await startTestServer();
    for (const headers of [{ origin: server.baseUrl }, {}] as Record<string, string>[]) {
      const res = await fetch(`${server.baseUrl}/api/v1/tokens`, {
        method: 'POST', headers: { cookie: server.cookie, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'ok' }),
      });
      expect(res.status).toBe(201);
    }
  });
});

describe('security headers', () => {
  it('sends them on every answer: dashboard, API, errors and refusals', async () => {
    server = await startTestServer();
    const answers = [
      await server.app.inject({ url: '/', headers: { accept: 'text/html' } }),
      await server.app.inject({ url: '/nodes/x', headers: { accept: 'text/html' } }),
      await server.app.inject({ url: '/api/v1/nodes', headers: { cookie: server.cookie } }),
      await server.app.inject({ url: '/api/v1/nodes' }),
      await server.app.inject({ url: '/api/v1/no-such-route' }),
      await server.app.inject({ url: '/api/v1/logs?limit=1e309', headers: { cookie: server.cookie } }),
      await server.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { cookie: server.cookie, origin: FOREIGN }, payload: {} }),
      await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{' }),
    ];
    for (const [i, res] of answers.entries()) {
      const where = `answer ${i} (${res.statusCode})`;
      const csp = String(res.headers['content-security-policy']);
      expect(csp, where).toContain("script-src 'self'");
      expect(csp, where).toContain("frame-ancestors 'none'");
      expect(csp, where).toContain("default-src 'self'");
      expect(csp, where).not.toMatch(/script-src[^;]*unsafe/);
      expect(res.headers['x-content-type-options'], where).toBe('nosniff');
      expect(res.headers['referrer-policy'], where).toBe('same-origin');
      expect(res.headers['x-frame-options'], where).toBe('DENY');
    }
  });
});
