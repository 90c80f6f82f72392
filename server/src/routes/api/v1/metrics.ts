import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ErrorCode } from '@dvic/protocol';
import { ApiError } from '../../../errors.js';
import { deviceSource, nodeSource } from '../../../metrics/metric-ingest.js';
import type { SeriesPoints } from '../../../metrics/metric-store.js';
import { errors } from '../../../schemas/common.js';
import { MetricSeriesRef } from '../../../schemas/protocol-schemas.js';
import { parseTimeParam } from './time-param.js';

/** An answer holds at most this many series (a query over many nodes is refused past it). */
const MAX_SERIES = 2000;
const HOUR = 3_600_000;

const range = {
  series: Type.Optional(Type.String({ maxLength: 4096, description: 'Comma-separated series names (cpu.total_pct,memory.used_bytes); a name ending in * matches names starting so (cpu.per_core_pct.*). None: every series.' })),
  from: Type.Optional(Type.String({ maxLength: 40, description: 'Start: ms since the epoch (also an RFC 3339 time or a duration back from now, 24h). Default: an hour before `to`.' })),
  to: Type.Optional(Type.String({ maxLength: 40, description: 'End, as `from`. Default: now.' })),
  step: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 24 * HOUR, description: 'Wished spacing of points in ms; at least (to - from) / 1000' })),
};

const Answer = Type.Object({ series: Type.Array(MetricSeriesRef) });

interface RangeQuery { series?: string; from?: string; to?: string; step?: number }

/** The range and names a query asks for, checked. */
function parseRange(query: RangeQuery) {
  const now = Date.now();
  const to = query.to === undefined ? now : parseTimeParam('to', query.to, now);
  const from = query.from === undefined ? to - HOUR : parseTimeParam('from', query.from, now);
  if (!(from < to)) throw new ApiError(400, ErrorCode.badRequest, `from (${from}) must be before to (${to})`);
  const names = (query.series ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  return { from, to, step: query.step, names, now };
}

/**
 * Metric history (issue 15): the tier is picked from the range (raw samples, minute or hour
 * rollups), at most ~1,000 points per series. Contract: docs/metrics.md.
 */
export const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { nodeRegistry: registry, metricStore: store } = app;

  /** The history of one node or device: the same query, the same answer. */
  const oneSource = (what: string, idDescription: string, source: (ref: string) => string) => ({
    schema: {
      tags: ['metrics'], summary: `Metric history of one ${what}: {"series": [{"name", "points": [[ts, value], ...]}]}`,
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64, description: idDescription }) }),
      querystring: Type.Object(range, { additionalProperties: false }),
      response: { 200: Answer, ...errors(400, 401, 404, 409) },
    },
    handler: async (request: { params: { id: string }; query: RangeQuery }) => ({ series: (await store.query({ source: source(request.params.id), ...parseRange(request.query) })).series }),
  });
  const { schema: nodeSchema, handler: nodeHandler } = oneSource('node', 'Node id, name, or the start of its id', (ref) => nodeSource(registry.resolve(ref).id));
  app.get('/nodes/:id/metrics', { schema: nodeSchema }, nodeHandler);
  // A device's numeric fields (temp_c, rssi...), one series each (docs/devices.md).
  const { schema: deviceSchema, handler: deviceHandler } = oneSource('device', 'Device id or name', (ref) => deviceSource(app.deviceRegistry.resolve(ref).id));
  app.get('/devices/:id/metrics', { schema: deviceSchema }, deviceHandler);

  app.get('/metrics/query', {
    schema: {
      tags: ['metrics'], summary: 'One or more series across several nodes (compare view): each series carries its node',
      description: '`nodes`: comma-separated node ids, names or id prefixes; `label`: key=value every node must carry; neither: every node.',
      querystring: Type.Object({
        ...range,
        nodes: Type.Optional(Type.String({ maxLength: 8192 })),
        label: Type.Optional(Type.String({ maxLength: 256, pattern: '^[^=]+=.*$', description: 'key=value, e.g. room=hall' })),
      }, { additionalProperties: false }),
      response: { 200: Answer, ...errors(400, 401, 404, 409) },
    },
  }, async (request) => {
    const { nodes, label } = request.query;
    const q = parseRange(request.query);
    let ids = nodes ? nodes.split(',').map((n) => n.trim()).filter(Boolean).map((n) => registry.resolve(n).id) : registry.list().map((n) => n.id);
    if (label) {
      const [key, ...rest] = label.split('=');
      const value = rest.join('=');
      ids = ids.filter((id) => registry.view(id)?.labels[key!] === value);
    }
    const series: (SeriesPoints & { node: string })[] = [];
    for (const id of [...new Set(ids)]) {
      for (const s of (await store.query({ source: nodeSource(id), ...q })).series) {
        series.push({ name: s.name, node: id, points: s.points });
        if (series.length > MAX_SERIES) throw new ApiError(400, ErrorCode.badRequest, `more than ${MAX_SERIES} series: name fewer series or nodes`);
      }
    }
    return { series };
  });
};
