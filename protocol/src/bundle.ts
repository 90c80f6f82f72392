import { schemas } from './generated/schemas.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const byId = new Map<string, Json>(schemas.map((s) => [s.$id, s as unknown as Json]));

/**
 * Returns a self-contained copy of part of a protocol schema: every $ref inlined and the
 * draft-specific keys ($schema, $id, $defs, x-*) dropped, so it can sit inside a REST route
 * schema (Fastify's draft-07 Ajv, fast-json-stringify, OpenAPI).
 *
 * @param id      schema $id relative to the protocol root, e.g. "messages/hardware.state.json"
 * @param pointer JSON pointer inside it, e.g. "/properties/data"
 */
export function bundledSchema(id: string, pointer = ''): Record<string, unknown> {
  const base = `https://dvic.devinci.fr/protocol/v1/${id}`;
  return inline(resolve(base, pointer), base) as Record<string, unknown>;
}

function resolve(base: string, pointer: string): Json {
  let node = byId.get(base);
  if (node === undefined) throw new Error(`unknown protocol schema ${base}`);
  for (const part of pointer.split('/').slice(1)) {
    node = (node as Record<string, Json>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (node === undefined) throw new Error(`no ${pointer} in ${base}`);
  }
  return node;
}

function inline(node: Json, base: string): Json {
  if (Array.isArray(node)) return node.map((n) => inline(n, base));
  if (node === null || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    const [file, pointer = ''] = node.$ref.split('#');
    const target = file ? new URL(file, base).href : base;
    const { $ref: _ref, ...siblings } = node;
    return { ...(inline(resolve(target, pointer), target) as object), ...(inline(siblings, base) as object) };
  }
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema' || key === '$id' || key === '$defs' || key.startsWith('x-')) continue;
    out[key] = inline(value, base);
  }
  return out;
}
