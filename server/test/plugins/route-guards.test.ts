// Every route of the OpenAPI document declares who may call it (x-role) and, when it changes
// things, how it is audited (x-audit); this checks each one is enforced as declared.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/services/passwords.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

type Role = 'viewer' | 'operator' | 'admin';
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

let server: TestServer;
const cookies: Partial<Record<Role, string>> = {};

beforeAll(async () => {
  server = await startTestServer();
  for (const role of ['viewer', 'operator'] as const) {
    await server.app.users.create(role, await hashPassword(`${role}-password`), role);
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: role, password: `${role}-password` } });
    cookies[role] = String(login.headers['set-cookie']).split(';')[0]!;
  }
  cookies.admin = server.cookie;
});
afterAll(async () => server.close());

interface Operation { method: string; path: string; role: Role | 'public'; audit?: string; credential?: string }

function operations(): Operation[] {
  const doc = server.app.swagger() as { paths: Record<string, Record<string, { 'x-role'?: Role | 'public'; 'x-audit'?: string; 'x-credential'?: string }>> };
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({
    method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000'), role: op['x-role']!, audit: op['x-audit'], credential: op['x-credential'],
  })));
}

describe('route guards', () => {
  it('every route declares a role, and every route that changes things an audit action', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(15);
    for (const op of ops) {
      expect(op.role, `${op.method} ${op.path}`).toMatch(/^(public|viewer|operator|admin)$/);
      // A device keepalive (public, its token the credential) is a ping, not a change a user makes.
      if (op.method !== 'GET' && op.credential !== 'device-token') expect(op.audit, `${op.method} ${op.path} is not audited`).toBeTruthy();
    }
  });

  it('refuses every protected route without credentials (401) and to a role below its own (403)', async () => {
    for (const op of operations().filter((o) => o.role !== 'public')) {
      const payload = op.method === 'GET' ? undefined : {};
      const anonymous = await server.app.inject({ method: op.method as 'GET', url: op.path, payload });
      expect(anonymous.statusCode, `${op.method} ${op.path} without credentials`).toBe(401);
      for (const role of ['viewer', 'operator'] as const) {
        if (RANK[role] >= RANK[op.role as Role]) continue;
        const res = await server.app.inject({ method: op.method as 'GET', url: op.path, payload, headers: { cookie: cookies[role]! } });
        expect(res.statusCode, `${op.method} ${op.path} as ${role}`).toBe(403);
      }
    }
  });
});

interface SchemaNode { type?: unknown; properties?: Record<string, SchemaNode>; additionalProperties?: boolean | SchemaNode; items?: SchemaNode; anyOf?: SchemaNode[]; oneOf?: SchemaNode[]; allOf?: SchemaNode[] }

/** Every object schema in a body, with where it is. */
function objectSchemas(node: SchemaNode | undefined, where: string): [string, SchemaNode][] {
  if (!node || typeof node !== 'object') return [];
  const own: [string, SchemaNode][] = node.type === 'object' || node.properties ? [[where, node]] : [];
  const children = [
    ...Object.entries(node.properties ?? {}).map(([k, v]) => objectSchemas(v, `${where}.${k}`)),
    ...(typeof node.additionalProperties === 'object' ? [objectSchemas(node.additionalProperties, `${where}.*`)] : []),
    objectSchemas(node.items, `${where}[]`),
    ...[...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])].map((v, i) => objectSchemas(v, `${where}|${i}`)),
  ];
  return [...own, ...children.flat()];
}

describe('request bodies', () => {
  it('refuse unknown properties at every depth: every object of every body schema is closed (or a map of plain values)', () => {
    const doc = server.app.swagger() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: SchemaNode }> } }>> };
    const bodies = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods)
      .filter(([, op]) => op.requestBody).flatMap(([method, op]) => Object.values(op.requestBody!.content).map((c) => [`${method.toUpperCase()} ${path}`, c.schema] as const)));
    expect(bodies.length).toBeGreaterThan(5);
    for (const [route, schema] of bodies) {
      for (const [where, object] of objectSchemas(schema, 'body')) {
        const extra = object.additionalProperties;
        const closed = extra === false || (typeof extra === 'object' && extra.type !== 'object' && !extra.properties);
        expect(closed, `${route} ${where} accepts unknown properties`).toBe(true);
      }
    }
  });

  it('take exactly {} on a change that has no fields, and refuse anything else with 400', async () => {
    const doc = server.app.swagger() as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
    const changes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods)
      .filter(([method]) => method !== 'get').map(([method, op]) => [`${method.toUpperCase()} ${path}`, op.requestBody] as const));
    for (const [route, body] of changes) expect(body, `${route} declares no body`).toBeDefined();
    const { node } = await server.enroll('no-body-node');
    for (const [method, url] of [['POST', `/api/v1/nodes/${node.id}/revoke`], ['DELETE', '/api/v1/tokens/999'], ['POST', '/api/v1/auth/logout']] as const) {
      const res = await server.api(method, url, { junk: { deeper: 1 } });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
    }
    expect((await server.api('GET', `/api/v1/nodes/${node.id}`)).json<{ node: { status: string } }>().node.status).toBe('offline');
  });

  it('answer 400 to an unknown or mistyped nested field, change nothing, and never 500', async () => {
    const { node } = await server.enroll('deep-node');
    const id = node.id as string;
    for (const [method, url, body] of [
      ['PATCH', `/api/v1/nodes/${id}`, { name: 'renamed', labels: { room: { nested: { deeper: 'x' } } } }],
      ['PATCH', `/api/v1/nodes/${id}`, { name: 'renamed', extra: { a: { b: { c: 1 } } } }],
      ['PATCH', `/api/v1/nodes/${id}/agent-config`, { metrics_interval_s: 2, nested: { x: 1 } }],
      ['POST', `/api/v1/nodes/${id}/exec`, { command: 'id', env: { A: { B: 'c' } } }],
      ['POST', '/api/v1/exec', { command: 'id', targets: { all: true, more: { x: 1 } } }],
      ['POST', '/api/v1/nodes', { name: 'other', labels: { a: 'b' }, key: { private: true } }],
    ] as const) {
      const res = await server.api(method, url, body);
      expect(res.statusCode, `${method} ${url} ${JSON.stringify(body)}`).toBe(400);
    }
    expect((await server.api('GET', `/api/v1/nodes/${id}`)).json().node.name).toBe('deep-node');
  });
});

describe('audited changes', () => {
  it('are not applied when their audit entry cannot be written: a clear 503, the node keeps its name', async () => {
    const { node } = await server.enroll('audit-me');
    server.app.db.exec("CREATE TEMP TRIGGER audit_fails BEFORE INSERT ON audit_log WHEN NEW.action = 'node.update' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END");
    try {
      const res = await server.api('PATCH', `/api/v1/nodes/${node.id}`, { name: 'renamed-without-audit' });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('storage_failed');
      expect(res.json().error.message).toMatch(/^not applied: this change could not be written to the audit log/);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      server.app.db.exec('DROP TRIGGER audit_fails');
    }
    expect((await server.api('GET', `/api/v1/nodes/${node.id}`)).json().node.name).toBe('audit-me');
    expect(server.app.nodeRegistry.view(node.id)!.name).toBe('audit-me');
    expect((await server.api('PATCH', `/api/v1/nodes/${node.id}`, { name: 'renamed-with-audit' })).statusCode).toBe(200);
  });

  it('keep an entry small whatever the body: a huge command and a deep structure are cut', async () => {
    const { node } = await server.enroll('big-body');
    const body = { argv: Array.from({ length: 300 }, (_, i) => `${i}-${'x'.repeat(900)}`), env: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`V${i}`, 'y'.repeat(1000)])) };
    expect((await server.api('POST', `/api/v1/nodes/${node.id}/exec`, body)).statusCode).toBe(409); // offline: refused, and audited
    const entry = (await server.api('GET', '/api/v1/audit?action=exec&limit=1')).json().entries[0];
    expect(entry.target).toBe(node.id);
    expect(JSON.stringify(entry.details).length).toBeLessThanOrEqual(4200);
    const { boundDetails } = await import('../../src/services/audit-trail.js');
    let deep: object = { leaf: 'password-like secret' };
    for (let i = 0; i < 10_000; i++) deep = { next: deep };
    expect(JSON.stringify(boundDetails({ body: deep })).length).toBeLessThan(200);
  });

  it('writes 1,000 requests without credentials as at most one entry per address and minute', async () => {
    await server.app.auditTrail.flushUnauthenticated();
    const before = (await server.api('GET', '/api/v1/audit?action=auth.unauthenticated&limit=500')).json().entries.length;
    await Promise.all(Array.from({ length: 1000 }, (_, i) => server.app.inject({ url: i % 2 ? '/api/v1/nodes' : '/api/v1/audit', headers: i % 3 ? {} : { cookie: 'dvic_session=forged' } })));
    expect((await server.api('GET', '/api/v1/audit?action=auth.unauthenticated&limit=500')).json().entries.length).toBe(before);
    await server.app.auditTrail.flushUnauthenticated();
    const entries = (await server.api('GET', '/api/v1/audit?action=auth.unauthenticated&limit=500')).json().entries;
    expect(entries.length).toBe(before + 1);
    expect(entries[0].details.requests).toBe(1000);
  });
});
