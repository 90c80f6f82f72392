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
    server.app.users.create(role, await hashPassword(`${role}-password`), role);
    const login = await server.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: role, password: `${role}-password` } });
    cookies[role] = String(login.headers['set-cookie']).split(';')[0]!;
  }
  cookies.admin = server.cookie;
});
afterAll(async () => server.close());

interface Operation { method: string; path: string; role: Role | 'public'; audit?: string }

function operations(): Operation[] {
  const doc = server.app.swagger() as { paths: Record<string, Record<string, { 'x-role'?: Role | 'public'; 'x-audit'?: string }>> };
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({
    method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000'), role: op['x-role']!, audit: op['x-audit'],
  })));
}

describe('route guards', () => {
  it('every route declares a role, and every route that changes things an audit action', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(15);
    for (const op of ops) {
      expect(op.role, `${op.method} ${op.path}`).toMatch(/^(public|viewer|operator|admin)$/);
      if (op.method !== 'GET') expect(op.audit, `${op.method} ${op.path} is not audited`).toBeTruthy();
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
