import type { DeviceKeepalive } from '@dvic/protocol';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { Ping } from '../live/device-registry.js';

/** A ping's body is kept up to this many characters (the keepalive route refuses more with 413). */
export const MAX_PING_BODY = 10 * 1024;
/**
 * /ping and /api/push accept a body up to this many bytes (413 above), of which the first
 * MAX_PING_BODY characters are kept, as Healthchecks does.
 */
export const MAX_PING_REQUEST_BYTES = 100 * 1024;

/** Numeric fields a keepalive may carry besides uptime_s, rssi and free_heap. */
const MAX_NUMBERS = 50;
const KNOWN = new Set(['status', 'message', 'uptime_s', 'rssi', 'free_heap', 'firmware', 'demo', 'numbers', 'logs']);

/** A keepalive status that reports a failure; any other string is a success. */
const FAILING = new Set(['fail', 'failed', 'failure', 'down', 'error', 'ko']);

/**
 * The first MAX_PING_BODY characters as a string of their own: a V8 slice would keep the whole
 * request body alive for as long as the ping is kept (in the write queue, as a device's last body).
 */
export const keep = (body: string | undefined | null) => (body ? Buffer.from(body.slice(0, MAX_PING_BODY), 'utf8').toString('utf8') : null);

/** POST /api/v1/devices/{token}/keepalive: the optional JSON body (already checked against its schema). */
export function keepalivePing(body: DeviceKeepalive | undefined, raw: string | null): Ping {
  const status = body?.status ?? 'ok';
  const fails = FAILING.has(status.toLowerCase());
  const numbers: Record<string, number> = { ...body?.numbers };
  // Numeric fields at the top level count as numbers too (the schema lets only numbers through).
  for (const [key, value] of Object.entries(body ?? {})) {
    if (!KNOWN.has(key) && typeof value === 'number') numbers[key] = value;
  }
  if (Object.keys(numbers).length > MAX_NUMBERS) {
    throw new ApiError(400, ErrorCode.badRequest, `at most ${MAX_NUMBERS} numeric fields (in numbers and at the top level together), not ${Object.keys(numbers).length}`);
  }
  for (const key of ['uptime_s', 'rssi', 'free_heap'] as const) {
    if (body?.[key] !== undefined) numbers[key] = body[key];
  }
  return {
    kind: fails ? 'fail' : 'ok', source: 'keepalive', status, message: body?.message ?? null, body: keep(raw), numbers,
    logs: (body?.logs ?? []).map((line) => ({ ...line, level: line.level.toUpperCase() as typeof line.level })),
    ...(body?.firmware !== undefined ? { firmware: body.firmware } : {}), ...(body?.demo !== undefined ? { demo: body.demo } : {}),
    ...(fails ? { reason: `status ${status}${body?.message ? `: ${body.message.slice(0, 200)}` : ''}` } : {}),
  };
}

/**
 * Healthchecks: /ping/<token>[/start|/fail|/log|/<exit status 0-255>]; the body (any type) is the
 * ping's log, its first 10 kB kept.
 */
export function healthchecksPing(action: string | undefined, body: string | undefined): Ping {
  const base = { source: 'ping' as const, message: null, body: keep(body), numbers: {}, logs: [] };
  if (action === undefined || action === '') return { ...base, kind: 'ok', status: 'ok' };
  if (action === 'start') return { ...base, kind: 'start', status: 'start' };
  if (action === 'log') return { ...base, kind: 'log', status: 'log' };
  if (action === 'fail') return { ...base, kind: 'fail', status: 'fail', reason: 'fail ping' };
  if (/^\d{1,3}$/.test(action) && Number(action) <= 255) {
    const code = Number(action);
    return code === 0 ? { ...base, kind: 'ok', status: 'exit 0' } : { ...base, kind: 'fail', status: `exit ${code}`, reason: `exit status ${code}` };
  }
  throw new ApiError(400, ErrorCode.badRequest, `unknown ping "${action.slice(0, 64)}": use /ping/<token>, /start, /fail, /log or an exit status 0-255`);
}

/** Uptime Kuma push: /api/push/<token>?status=up|down&msg=...&ping=... (status other than up is down, as Kuma does). */
export function kumaPush(query: { status?: string; msg?: string; ping?: string }): Ping {
  const status = query.status || 'up';
  const up = status === 'up';
  const message = query.msg ? query.msg.slice(0, 1024) : null;
  const ping = query.ping === undefined || query.ping === '' ? NaN : Number(query.ping);
  return {
    kind: up ? 'ok' : 'fail', source: 'push', status: status.slice(0, 64), message, body: null,
    numbers: Number.isFinite(ping) ? { ping } : {}, logs: [],
    ...(up ? {} : { reason: `status ${status.slice(0, 64)}${message ? `: ${message.slice(0, 200)}` : ''}` }),
  };
}
