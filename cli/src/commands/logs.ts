import { parse } from '../args.js';
import { client, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { paint, type Color } from '../format/color.js';
import { renderTable } from '../format/table.js';
import { duration, timestamp } from '../format/units.js';
import { LiveConnection } from '../live.js';
import { resolveNode } from '../resolve-node.js';

const USAGE = 'usage: dvic logs [<node>] [--demo NAME] [--level LEVEL] [--since 10m] [--until TIME] [-q TEXT] [-n N] [-f] [--json]';
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const LEVEL_COLOR: Record<string, Color> = { TRACE: 'gray', DEBUG: 'gray', INFO: 'blue', WARN: 'yellow', ERROR: 'red', FATAL: 'magenta' };

export async function logs(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    demo: { type: 'string', short: 'd' }, level: { type: 'string', short: 'l' }, since: { type: 'string' }, until: { type: 'string' },
    query: { type: 'string', short: 'q' }, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' },
    json: { type: 'boolean' }, system: { type: 'boolean' },
  }, USAGE);
  if (values.help) {
    return print(ctx, `${USAGE}\n\nStored logs, oldest first (the last N, default 100); -f then follows new ones live.\n--level is a minimum; --since/--until take 10m, 2h, 7d or a time; -q is full text; --system shows system logs.`), 0;
  }
  if (positionals.length > 1) throw new UsageError(USAGE);
  const level = (values.level as string | undefined)?.toUpperCase();
  if (level && !LEVELS.includes(level)) throw new UsageError(`--level must be one of ${LEVELS.join(', ')}`);
  const limit = Number(values.lines ?? 100);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError('-n must be between 1 and 1000');
  const api = client(ctx);
  const nodes: { id: string; name: string }[] = (await api.get('/api/v1/nodes')).nodes;
  const names = new Map(nodes.map((n) => [n.id, n.name]));
  const node = positionals[0] ? resolveNode(nodes, positionals[0]) : undefined;
  const filters = { node: node?.id, demo: values.demo as string | undefined, level, q: values.query as string | undefined, source: values.system ? 'system' : undefined };
  const query = new URLSearchParams(Object.entries({ ...filters, since: values.since, until: values.until, limit: String(limit) })
    .filter(([, v]) => v !== undefined) as [string, string][]);
  const { records } = await api.get(`/api/v1/logs?${query}`);
  const show = (r: any) => print(ctx, values.json ? JSON.stringify({ ...r, node: names.get(r.node_id) }) : line(r, names, ctx.color));
  for (const r of [...records].reverse()) show(r);
  if (!values.follow) return 0;
  return follow(ctx, api, filters, show);
}

function line(r: any, names: Map<string, string>, color: boolean): string {
  const where = `${names.get(r.node_id) ?? r.node_id.slice(0, 8)}/${r.demo ?? 'system'}`;
  return `${paint(timestamp(r.ts), 'gray', color)} ${where} ${paint(r.level.padEnd(5), LEVEL_COLOR[r.level], color)} ${r.message}`;
}

async function follow(ctx: Context, api: ReturnType<typeof client>, filters: Record<string, string | undefined>, show: (r: any) => void): Promise<number> {
  const subscription = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
  return new Promise<number>((resolve) => {
    const live = new LiveConnection(api, {
      onOpen: (send) => send({ type: 'logs.subscribe', data: subscription }),
      onStatus: (status, detail) => { if (status === 'lost') ctx.stderr.write(`dvic: live connection lost (${detail}), retrying…\n`); },
      onMessage: (m) => {
        if (m.type === 'logs.records') {
          for (const r of m.data.records) show(r);
          if (m.data.dropped) ctx.stderr.write(`dvic: ${m.data.dropped} lines skipped (too many to follow)\n`);
        } else if (m.type === 'live.error') {
          ctx.stderr.write(`dvic: ${m.data.message}\n`);
        }
      },
    });
    const stop = () => {
      live.stop();
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    live.start();
  });
}

export async function demos(args: string[], ctx: Context): Promise<number> {
  const usage = 'usage: dvic demos [<node>] [--json]';
  const { values, positionals } = parse(args, { json: { type: 'boolean' } }, usage);
  if (values.help) return print(ctx, `${usage}\n\nDemo processes: alive or dead, since when, lines and errors.`), 0;
  if (positionals.length > 1) throw new UsageError(usage);
  const api = client(ctx);
  const nodes: { id: string; name: string }[] = (await api.get('/api/v1/nodes')).nodes;
  const names = new Map(nodes.map((n) => [n.id, n.name]));
  const node = positionals[0] ? resolveNode(nodes, positionals[0]) : undefined;
  const { demos: list } = await api.get(`/api/v1/demos${node ? `?node=${node.id}` : ''}`);
  if (values.json) return print(ctx, JSON.stringify({ demos: list }, null, 2)), 0;
  if (!list.length) return print(ctx, 'no demos seen yet'), 0;
  const now = ctx.now();
  print(ctx, renderTable(['NODE', 'DEMO', 'STATE', 'PID', 'CONTAINER', 'LINES', 'ERRORS', 'LAST LINE'], list.map((d: any) => [
    names.get(d.node_id) ?? d.node_id, d.demo, { text: `${d.alive ? 'alive' : 'dead'} ${duration(now - d.since)}`, color: d.alive ? 'green' : 'red' },
    String(d.pid), d.container?.name ?? d.container?.id?.slice(0, 12) ?? '-', { text: String(d.line_count), align: 'right' },
    { text: String(d.error_count), align: 'right' }, d.last_line_at ? `${duration(now - d.last_line_at)} ago` : '-',
  ]), ctx.color));
  return 0;
}
