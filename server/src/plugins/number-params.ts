import type { FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';

interface NumberParam {
  where: 'query' | 'params';
  name: string;
  integer: boolean;
  min: number;
  max: number;
}

interface PropertySchema { type?: unknown; minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number }

const INTEGER = /^-?\d{1,16}$/;
const DECIMAL = /^-?\d{1,16}(\.\d{1,16})?$/;

/** The numeric properties of a querystring or params schema. */
function numberParams(where: NumberParam['where'], schema: unknown): NumberParam[] {
  const properties = (schema as { properties?: Record<string, PropertySchema> } | undefined)?.properties ?? {};
  return Object.entries(properties)
    .filter(([, p]) => p.type === 'integer' || p.type === 'number')
    .map(([name, p]) => ({
      where, name, integer: p.type === 'integer',
      min: p.minimum ?? p.exclusiveMinimum ?? Number.MIN_SAFE_INTEGER, max: p.maximum ?? p.exclusiveMaximum ?? Number.MAX_SAFE_INTEGER,
    }));
}

/** A query or path number: plain decimal digits, finite, in range; anything else is a clear 400. */
function check(param: NumberParam, raw: unknown): void {
  if (raw === undefined) return;
  const text = Array.isArray(raw) ? String(raw[0]) : String(raw);
  const value = Number(text);
  const syntax = param.integer ? INTEGER : DECIMAL;
  if (!syntax.test(text) || !Number.isFinite(value) || value < param.min || value > param.max) {
    const kind = param.integer ? 'a whole number' : 'a number';
    throw new ApiError(400, ErrorCode.badRequest, `${param.name}: "${text.slice(0, 40)}" is not ${kind} from ${param.min} to ${param.max} (decimal digits only)`);
  }
}

/**
 * Every numeric query and path parameter of every route is checked before validation: schema
 * coercion alone lets "1e309" (Infinity), "0x10" and "1e3" through.
 */
export const numberParamsPlugin = fp(async (app) => {
  app.addHook('onRoute', (route: RouteOptions) => {
    const params = [...numberParams('query', route.schema?.querystring), ...numberParams('params', route.schema?.params)];
    if (params.length === 0) return;
    const hook = async (request: FastifyRequest) => {
      for (const param of params) check(param, (request[param.where] as Record<string, unknown> | undefined)?.[param.name]);
    };
    route.preValidation = [...(Array.isArray(route.preValidation) ? route.preValidation : route.preValidation ? [route.preValidation] : []), hook];
  });
}, { name: 'number-params' });
