// Every query and path parameter of every route of the OpenAPI document, given malformed or
// out-of-range numbers: a clear 400 for numeric parameters, and never a 500 anywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

const BAD = ['1e309', '-1', '0', '1.5', 'NaN', 'Infinity', '-Infinity', '9e99', '', '0x10', '1e3', ' 5', '99999999999999999999'];

interface Parameter { name: string; in: 'query' | 'path'; schema: { type?: string; minimum?: number; maximum?: number } }
interface Operation { method: string; path: string; parameters: Parameter[] }

function operations(): Operation[] {
  const doc = server.app.swagger() as { paths: Record<string, Record<string, { parameters?: Parameter[] }>> };
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({
    method: method.toUpperCase(), path, parameters: op.parameters ?? [],
  })));
}

/** Whether a value is one a numeric parameter should take: decimal digits, in range. */
function valid(p: Parameter, value: string): boolean {
  const n = Number(value);
  const syntax = p.schema.type === 'integer' ? /^-?\d+$/ : /^-?\d+(\.\d+)?$/;
  return syntax.test(value) && Number.isSafeInteger(Math.trunc(n)) && n >= (p.schema.minimum ?? -Infinity) && n <= (p.schema.maximum ?? Infinity);
}

function url(op: Operation, param: Parameter, value: string): string {
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => (name === param.name ? encodeURIComponent(value) : '1'));
  return param.in === 'query' ? `${path}?${param.name}=${encodeURIComponent(value)}` : path;
}

describe('numbers in parameters', () => {
  it('answers 400 with a clear message to malformed or out-of-range numbers in every numeric query and path parameter', async () => {
    const numeric = operations().flatMap((op) => op.parameters.filter((p) => p.schema.type === 'integer' || p.schema.type === 'number').map((p) => ({ op, p })));
    expect(numeric.map(({ op, p }) => `${op.method} ${op.path} ${p.name}`)).toEqual(expect.arrayContaining([
      'GET /api/v1/logs limit', 'GET /api/v1/commands limit', 'GET /api/v1/audit limit', 'DELETE /api/v1/tokens/{id} id',
    ]));
    for (const { op, p } of numeric) {
      for (const value of BAD) {
        if (valid(p, value)) continue;
        if (p.in === 'path' && value === '') continue; // an empty path segment is another route (404)
        const res = await server.app.inject({ method: op.method as 'GET', url: url(op, p, value), headers: { cookie: server.cookie }, ...(op.method === 'GET' ? {} : { payload: {} }) });
        expect(res.statusCode, `${op.method} ${url(op, p, value)}`).toBe(400);
        expect(res.json().error.code).toBe('bad_request');
        expect(res.json().error.message, `${op.method} ${url(op, p, value)}`).toMatch(new RegExp(`${p.name}`));
      }
    }
  });

  it('never answers 500 to such values in any parameter of any GET route', async () => {
    for (const op of operations().filter((o) => o.method === 'GET')) {
      for (const p of op.parameters) {
        for (const value of BAD) {
          const res = await server.app.inject({ url: url(op, p, value), headers: { cookie: server.cookie } });
          expect(res.statusCode, `GET ${url(op, p, value)}`).toBeLessThan(500);
        }
      }
    }
  });

  it('still takes ordinary numbers', async () => {
    expect((await server.api('GET', '/api/v1/logs?limit=1000')).statusCode).toBe(200);
    expect((await server.api('GET', '/api/v1/commands?limit=1')).statusCode).toBe(200);
    expect((await server.api('GET', '/api/v1/audit?limit=500')).statusCode).toBe(200);
  });
});

describe('times in parameters', () => {
  it('answers 400 with a clear message to times out of range in every route that takes one', async () => {
    for (const url of ['/api/v1/logs?since=', '/api/v1/logs?until=', '/api/v1/metrics/query?from=', '/api/v1/metrics/query?to=']) {
      for (const value of ['99999999999999999999999999d', '1e400s', '99999999999999999999999', '9000000000000000']) {
        const res = await server.api('GET', `${url}${value}`);
        expect(res.statusCode, `${url}${value}`).toBe(400);
        expect(res.json().error.code).toBe('bad_request');
        expect(res.json().error.message, `${url}${value}`).toMatch(/out of range|is not a time/);
      }
    }
  });
});

describe('long path parameters', () => {
  it('answers a 101-128 character token with the route\'s own error, not Fastify\'s 414', async () => {
    for (const length of [101, 128]) {
      const token = 'a'.repeat(length);
      const keepalive = await server.app.inject({ method: 'POST', url: `/api/v1/devices/${token}/keepalive`, payload: {} });
      expect(keepalive.statusCode).toBe(404);
      expect(keepalive.json().error).toEqual({ code: 'not_found', message: 'no device has this token' });
      const ping = await server.app.inject({ url: `/ping/${token}` });
      expect(ping.statusCode).toBe(404);
      expect(ping.body).toBe('not found');
    }
  });
});
