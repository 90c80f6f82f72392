import { call } from '@dvic/client';
import { isLogLevel, LOG_LEVELS, type LogLevel, type LogRecordView, type LogsSubscribeLiveMessage } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import type { Connection } from '../connection.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { logJson, logLine } from '../format/log-line.js';
import { LiveConnection } from '../live.js';
import { nodeNames } from '../node-names.js';

const USAGE = 'usage: dvic logs [<node>] [--demo NAME] [--level LEVEL] [--field NAME=VALUE]... [field.NAME=VALUE]... [--since 10m] [--until TIME] [-q TEXT] [-n N] [-f] [--json] [--system]';

type Filters = LogsSubscribeLiveMessage['data'];

export async function logs(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    demo: { type: 'string', short: 'd' }, level: { type: 'string', short: 'l' }, since: { type: 'string' }, until: { type: 'string' },
    query: { type: 'string', short: 'q' }, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' },
    json: { type: 'boolean' }, system: { type: 'boolean' }, field: { type: 'string', multiple: true },
  }, USAGE);
  if (values.help) {
    return print(ctx, `${USAGE}\n\nStored logs, oldest first (the last N, default 100); -f then follows new ones live, each line once.\n--level is a minimum; --since/--until take 10m, 2h, 7d or a time; -q matches words (prefixes) and "quoted phrases"; --system shows system logs.`), 0;
  }
  const fields = fieldArguments((values.field as string[] | undefined) ?? [], positionals.filter((p) => p.startsWith('field.')));
  const nodeArgs = positionals.filter((p) => !p.startsWith('field.'));
  if (nodeArgs.length > 1) throw new UsageError(USAGE);
  const level = minimumLevel(values.level as string | undefined);
  const limit = Number(values.lines ?? 100);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('-n must be between 1 and 1000');
  if (values.follow && values.until) throw new UsageError('-f follows new lines: it cannot go with --until');
  const server = connection(ctx);
  const { nodeId, names } = await scope(server, nodeArgs[0]);
  const filters: Filters = compact({ node: nodeId, demo: values.demo as string | undefined, level, q: values.query as string | undefined, source: values.system ? 'system' : undefined, fields });
  const since = values.since as string | undefined;
  const { records } = await call(server.api.GET('/api/v1/logs', { params: { query: compact({ ...restQuery(filters), since, until: values.until as string | undefined, limit }) } }));
  const show = (r: LogRecordView) => print(ctx, values.json ? logJson(r, names) : logLine(r, names, ctx.color));
  for (const r of [...records].reverse()) show(r);
  if (!values.follow) return 0;
  const after = records.length ? Math.max(...records.map((r) => r.id)) : since ? await newestId(server, filters) : 0;
  return follow(ctx, server, filters, after, show);
}

/** --field camera=usb-0 and field.camera=usb-0 -> { camera: 'usb-0' } (undefined when none). */
function fieldArguments(options: string[], positionals: string[]): Record<string, string> | undefined {
  const pairs = [...options, ...positionals.map((p) => p.slice('field.'.length))];
  if (!pairs.length) return undefined;
  const fields: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    if (eq < 1 || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new UsageError(`field filter "${pair}" is not NAME=VALUE`);
    fields[name] = pair.slice(eq + 1);
  }
  return fields;
}

/** The REST query of some filters: fields go as field.<name>=<value>. */
function restQuery({ fields, ...rest }: Filters): Omit<Filters, 'fields'> {
  const query: Omit<Filters, 'fields'> & Record<string, unknown> = { ...rest };
  for (const [name, value] of Object.entries(fields ?? {})) query[`field.${name}`] = value;
  return query;
}

function minimumLevel(text: string | undefined): LogLevel | undefined {
  const level = text?.toUpperCase();
  if (level !== undefined && !isLogLevel(level)) throw new UsageError(`--level must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/** One node (the server resolves the reference, 409 listing the candidates) or all of them, with names to show. */
async function scope(server: Connection, ref: string | undefined): Promise<{ nodeId?: string; names: Map<string, string> }> {
  if (!ref) return { names: await nodeNames(server) };
  const { node } = await call(server.api.GET('/api/v1/nodes/{id}', { params: { path: { id: ref } } }));
  return { nodeId: node.id, names: new Map([[node.id, node.name]]) };
}

/**
 * Where to follow from when --since matched nothing: the newest matching record of any age.
 * Following from 0 would replay everything older than --since.
 */
async function newestId(server: Connection, filters: Filters): Promise<number> {
  const { records } = await call(server.api.GET('/api/v1/logs', { params: { query: { ...restQuery(filters), limit: 1 } } }));
  return records[0]?.id ?? 0;
}

/**
 * Follows from after the newest id shown: logs.subscribe with after_id replays what came since, then
 * the live tail. The server sends each line of a subscription once; on PostgreSQL, where replicas
 * commit ids out of order, a line may come with an older id than one printed (docs/scale-out.md),
 * so every line it sends is printed. After a reconnection it resumes from the newest id printed.
 */
function follow(ctx: Context, server: Connection, filters: Filters, after: number, show: (r: LogRecordView) => void): Promise<number> {
  let lastId = after;
  return new Promise<number>((resolve, reject) => {
    const live = new LiveConnection(server, {
      onOpen: (send) => send({ type: 'logs.subscribe', data: { ...filters, after_id: lastId } }),
      onStatus: (status, detail) => { if (status === 'lost') ctx.stderr.write(`dvic: live connection lost (${detail}), retrying…\n`); },
      onMessage: (m) => {
        if (m.type === 'logs.records') {
          for (const r of m.data.records) {
            show(r);
            lastId = Math.max(lastId, r.id);
          }
        } else if (m.type === 'live.error') {
          ctx.stderr.write(`dvic: ${m.data.message}\n`);
        }
      },
      onEnd: (err) => {
        stopListening();
        reject(err);
      },
    });
    const stopListening = ctx.onInterrupt(() => {
      live.stop();
      stopListening();
      resolve(0);
    });
    live.start();
  });
}

/** The object without its undefined values (a query string or a message carries only what is set). */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
