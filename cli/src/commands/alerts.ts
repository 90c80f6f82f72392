import { call, type DvicApi, type Schemas } from '@dvic/client';
import { duration } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { renderTable, type Cell } from '../format/table.js';
import { timestamp } from '../format/timestamp.js';

type Alert = Schemas['Alert'];

const USAGE = `usage: dvic alerts [list|ack|mute|mutes|unmute] ...

  dvic alerts [list] [--history|--all] [--json]   (firing now; --history: resolved; --all: both)
  dvic alerts ack <alert>                         (stops its repeats; <alert>: its id or the start of it)
  dvic alerts mute <alert>|<node> [--for 2h] [--reason TEXT]   (what the alert is about, or a whole node)
  dvic alerts mute --node N | --demo D [--node N] | --device X  [--for 30m] [--reason TEXT]
                                                  (--for defaults to 1h)
  dvic alerts mutes [--json]                      (mutes and maintenance windows not ended)
  dvic alerts unmute <mute id>

Durations: 90s, 30m, 2h, 1d. Rules and channels: the dashboard's alerts page, docs/alerts.md.`;

const SEVERITY_COLOR: Record<Alert['severity'], Cell['color']> = { critical: 'red', warning: 'yellow', info: undefined };

/** "90s", "30m", "2h", "1d" or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new UsageError(`--for: "${text}" is not a duration such as 30m, 2h or 1d`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's'];
}

function table(alerts: Alert[], ctx: Context): string {
  const now = Date.now();
  const rows = alerts.map((a): (Cell | string)[] => [
    a.id.slice(0, 8), { text: a.severity, color: SEVERITY_COLOR[a.severity] },
    a.state === 'firing' ? (a.flapping ? 'flapping' : 'firing') : 'resolved', a.summary, timestamp(a.started_at),
    duration((a.resolved_at ?? now) - a.started_at), [a.acked_by ? `acked by ${a.acked_by}` : '', a.muted ? 'muted' : ''].filter(Boolean).join(', '),
  ]);
  return renderTable(['ID', 'SEVERITY', 'STATE', 'SUMMARY', 'SINCE', 'FOR', 'NOTE'], rows, ctx.color);
}

/** Alerts whose id starts with ref (4 characters at least), among the newest. */
async function alertsMatching(api: DvicApi, ref: string): Promise<Alert[]> {
  if (ref.length < 4 || !/^[0-9a-f-]+$/i.test(ref)) return [];
  const { alerts } = await call(api.GET('/api/v1/alerts', { params: { query: { limit: 1000 } } }));
  return alerts.filter((a) => a.id.startsWith(ref.toLowerCase()));
}

/** An alert by id or the start of its id. */
async function findAlert(api: DvicApi, ref: string): Promise<Alert> {
  const hits = await alertsMatching(api, ref);
  if (hits.length === 1) return hits[0]!;
  throw new CliError(hits.length ? `"${ref}" matches ${hits.length} alerts: give more of the id` : `no alert "${ref}" (dvic alerts --all lists them)`);
}

export async function alerts(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' }, history: { type: 'boolean' }, all: { type: 'boolean' }, for: { type: 'string' }, reason: { type: 'string' },
    node: { type: 'string' }, demo: { type: 'string' }, device: { type: 'string' },
  }, USAGE);
  if (values.help) return print(ctx, USAGE), 0;
  const [action = 'list', ref] = positionals;
  const { api } = connection(ctx);
  switch (action) {
    case 'list': {
      const state = values.all ? undefined : values.history ? 'resolved' : 'firing';
      const { alerts: list } = await call(api.GET('/api/v1/alerts', { params: { query: state ? { state } : {} } }));
      print(ctx, values.json ? JSON.stringify(list, null, 2) : list.length ? table(list, ctx) : state === 'firing' ? 'No alert firing.' : 'No alerts.');
      return 0;
    }
    case 'ack': {
      if (!ref) throw new UsageError('dvic alerts ack needs an alert id');
      const { alert } = await call(api.POST('/api/v1/alerts/{id}/ack', { params: { path: { id: (await findAlert(api, ref)).id } }, body: {} }));
      print(ctx, `Acknowledged: ${alert.summary}`);
      return 0;
    }
    case 'mute': return mute(api, ref, values, ctx);
    case 'mutes': {
      const { mutes } = await call(api.GET('/api/v1/alert-mutes'));
      const rows = mutes.map((m) => [m.id, [m.node_id && `node ${m.node_id.slice(0, 8)}`, m.demo && `demo ${m.demo}`, m.device_id && `device ${m.device_id.slice(0, 8)}`, m.rule_id && `rule ${m.rule_id.slice(0, 8)}`].filter(Boolean).join(', '), timestamp(m.starts_at), timestamp(m.ends_at), m.reason ?? '']);
      print(ctx, values.json ? JSON.stringify(mutes, null, 2) : mutes.length ? renderTable(['ID', 'WHAT', 'FROM', 'UNTIL', 'REASON'], rows, ctx.color) : 'No mutes.');
      return 0;
    }
    case 'unmute': {
      if (!ref) throw new UsageError('dvic alerts unmute needs a mute id (dvic alerts mutes)');
      await call(api.DELETE('/api/v1/alert-mutes/{id}', { params: { path: { id: ref } }, body: {} }));
      print(ctx, 'Mute ended');
      return 0;
    }
    default: throw new UsageError(`unknown action "${action}"\n${USAGE}`);
  }
}

async function mute(api: DvicApi, ref: string | undefined, values: Record<string, unknown>, ctx: Context): Promise<number> {
  const seconds = parseDuration(typeof values.for === 'string' ? values.for : '1h');
  const reason = typeof values.reason === 'string' ? { reason: values.reason } : {};
  const [alert, ...more] = ref ? await alertsMatching(api, ref) : [];
  if (more.length) throw new CliError(`"${ref}" matches ${more.length + 1} alerts: give more of the id`);
  if (ref && !alert) {
    if (typeof values.node === 'string') throw new UsageError('give a node either as <node> or as --node');
    values = { ...values, node: ref };
  }
  if (alert) {
    const { mute: m } = await call(api.POST('/api/v1/alerts/{id}/mute', { params: { path: { id: alert.id } }, body: { duration_s: seconds, ...reason } }));
    print(ctx, `Muted ${alert.subject.demo ?? alert.subject.device_name ?? alert.subject.node_name} until ${timestamp(m.ends_at)}`);
    return 0;
  }
  const text = (k: 'node' | 'demo' | 'device') => (typeof values[k] === 'string' ? values[k] : undefined);
  const body: { node?: string; demo?: string; device?: string; duration_s: number; reason?: string } = { duration_s: seconds, ...reason };
  for (const k of ['node', 'demo', 'device'] as const) if (text(k) !== undefined) body[k] = text(k);
  if (!body.node && !body.demo && !body.device) throw new UsageError('dvic alerts mute needs an alert id, --node, --demo or --device');
  const { mute: m } = await call(api.POST('/api/v1/alert-mutes', { body }));
  print(ctx, `Muted ${[body.demo, body.device, body.node].filter(Boolean).join(' on ')} until ${timestamp(m.ends_at)}`);
  return 0;
}
