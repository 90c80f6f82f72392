import fs from 'node:fs';
import { call } from '@dvic/client';
import type { LiveMessage, NodeView } from '@dvic/protocol/shared';
import { parse, parseLabels } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { paint } from '../format/color.js';
import { NODE_COLUMNS, nodeRow } from '../format/nodes.js';
import { renderTable } from '../format/table.js';
import { LiveConnection } from '../live.js';
import { addOverSsh, ADD_OVER_SSH_USAGE, remove } from './nodes-onboard.js';

const USAGE = `usage: dvic nodes [--json] [--status online|offline|revoked] [--label key=value]
       dvic nodes watch [--count N]
       dvic nodes add <name> [--label key=value]... [--output agent.json] [--force]
       dvic nodes add <name> --host IP[:port] --user U --password-stdin --via <node|server> [--labels k=v,...] [--accept-host-key SHA256:...]
       dvic nodes rename <node> <new-name>
       dvic nodes label <node> key=value... [key-]...
       dvic nodes revoke <node>
       dvic nodes remove <node> [--uninstall]`;

const SUBCOMMANDS: Record<string, (args: string[], ctx: Context) => Promise<number>> = { watch, add, rename, label, revoke, remove };

export async function nodes(args: string[], ctx: Context): Promise<number> {
  const sub = args[0] && SUBCOMMANDS[args[0]];
  if (sub) return sub(args.slice(1), ctx);
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, status: { type: 'string' }, label: { type: 'string' } }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nLists every node with its live status and hardware. --json prints {"nodes": [...]} exactly as GET /api/v1/nodes.`), 0;
  if (positionals.length) throw new UsageError(`unknown nodes command "${positionals[0]}"\n${USAGE}`);
  const filter = filterFor(values.status as string | undefined, values.label as string | undefined);
  const { nodes: all } = await call(connection(ctx).api.GET('/api/v1/nodes'));
  const list = all.filter(filter);
  if (values.json) return print(ctx, JSON.stringify({ nodes: list }, null, 2)), 0;
  print(ctx, list.length ? renderTable(NODE_COLUMNS, list.map((n) => nodeRow(n, ctx.now())), ctx.color) : 'no nodes (add one with dvic nodes add <name>)');
  return 0;
}

function filterFor(status: string | undefined, label: string | undefined): (n: NodeView) => boolean {
  if (status && !['online', 'offline', 'revoked'].includes(status)) throw new UsageError(`--status must be online, offline or revoked\n${USAGE}`);
  const wanted = label ? Object.entries(parseLabels([label]))[0]! : null;
  return (n) => (!status || n.status === status) && (!wanted || n.labels[wanted[0]] === wanted[1]);
}

/** Applies a live message to the nodes by id; false when it changes nothing shown. */
function applyToNodes(byId: Map<string, NodeView>, m: LiveMessage): boolean {
  if (m.type === 'snapshot') {
    byId.clear();
    for (const n of m.data.nodes) byId.set(n.id, n);
  } else if (m.type === 'node.updated') {
    byId.set(m.data.node.id, { ...byId.get(m.data.node.id), ...m.data.node });
  } else if (m.type === 'node.removed') {
    byId.delete(m.data.node_id);
  } else if (m.type === 'node.status' || m.type === 'node.hardware') {
    const node = byId.get(m.data.node_id);
    if (!node) return false;
    if (m.type === 'node.status') byId.set(node.id, { ...node, status: m.data.status, status_since: m.data.since });
    else byId.set(node.id, { ...node, hardware: m.data.hardware, hardware_at: m.data.at });
  } else {
    return false;
  }
  return true;
}

/** Live table: redrawn in place on a terminal; elsewhere a new table per change, at most once a second. */
async function watch(args: string[], ctx: Context): Promise<number> {
  const { values } = parse(args, { count: { type: 'string' } }, 'usage: dvic nodes watch [--count N]');
  if (values.help) return print(ctx, 'usage: dvic nodes watch [--count N]\n\nFollows every node live until Ctrl-C (or N updates).'), 0;
  const limit = values.count === undefined ? Infinity : Number(values.count);
  if (!Number.isInteger(limit) && limit !== Infinity) throw new UsageError('--count must be a whole number');
  const server = connection(ctx);
  const byId = new Map<string, NodeView>();
  const tty = Boolean(ctx.stdout.isTTY);
  let drawn = 0;
  let pending: NodeJS.Timeout | undefined;
  let banner = '';
  let finish: (code: number) => void = () => undefined;
  let fail: (err: Error) => void = () => undefined;
  const result = new Promise<number>((resolve, reject) => { finish = resolve; fail = reject; });

  const draw = () => {
    pending = undefined;
    const list = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
    const table = renderTable(NODE_COLUMNS, list.map((n) => nodeRow(n, ctx.now())), ctx.color);
    ctx.stdout.write(`${tty ? '\x1b[H\x1b[2J' : ''}${banner ? `${paint(banner, 'yellow', ctx.color)}\n` : ''}${table}\n${tty ? '' : '\n'}`);
    if (++drawn >= limit) finish(0);
  };
  const schedule = () => {
    if (!pending) pending = setTimeout(draw, tty ? 100 : 1000);
  };
  const live = new LiveConnection(server, {
    onStatus: (status, detail) => {
      banner = status === 'lost' ? `live connection lost (${detail}), retrying…` : '';
      if (status === 'lost') schedule();
    },
    onMessage: (m) => { if (applyToNodes(byId, m)) schedule(); },
    onEnd: fail,
  });
  const stopListening = ctx.onInterrupt(() => finish(0));
  live.start();
  try {
    return await result;
  } finally {
    live.stop();
    clearTimeout(pending);
    stopListening();
  }
}

async function add(args: string[], ctx: Context): Promise<number> {
  if (args.some((a) => a === '--host' || a.startsWith('--host='))) return addOverSsh(args, ctx);
  const usage = 'usage: dvic nodes add <name> [--label key=value]... [--output agent.json] [--force]';
  const { values, positionals } = parse(args, { label: { type: 'string', multiple: true }, output: { type: 'string', short: 'o' }, force: { type: 'boolean' } }, usage);
  if (values.help) return print(ctx, `${usage}\n${ADD_OVER_SSH_USAGE}\n\nEnrolls a node and writes its agent config (private key included, mode 0600);\nwith --host, adds the machine over SSH instead (dvic nodes add --host x --help).`), 0;
  if (positionals.length !== 1) throw new UsageError(usage);
  const output = (values.output as string | undefined) ?? `${positionals[0]}.agent.json`;
  if (fs.existsSync(output) && !values.force) throw new CliError(`${output} exists (use --force to overwrite)`);
  const labels = parseLabels((values.label as string[] | undefined) ?? []) as Record<string, string>;
  const { node, config } = await call(connection(ctx).api.POST('/api/v1/nodes', { body: { name: positionals[0]!, labels } }));
  fs.writeFileSync(output, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(output, 0o600);
  print(ctx, `Enrolled ${node.name} (${node.id}).\nIts agent config, private key included, is in ${output} (mode 0600). On the machine:\n` +
    `  sudo install -m 600 -D ${output} /etc/dvic-agent/config.json\n  sudo install -D agent/dvic_agent.py /opt/dvic-agent/dvic_agent.py && sudo install agent/dvic_agent.py /opt/dvic-agent/guard.py\n` +
    '  sudo cp agent/dvic-agent.service /etc/systemd/system/ && sudo systemctl enable --now dvic-agent');
  return 0;
}

/** A node's path parameter: its id, name or id prefix, resolved by the server (409 lists the candidates). */
const nodePath = (ref: string) => ({ params: { path: { id: ref } } });

async function rename(args: string[], ctx: Context): Promise<number> {
  const usage = 'usage: dvic nodes rename <node> <new-name>';
  const { values, positionals } = parse(args, {}, usage);
  if (values.help) return print(ctx, usage), 0;
  if (positionals.length !== 2) throw new UsageError(usage);
  const [ref, name] = positionals as [string, string];
  const { node } = await call(connection(ctx).api.PATCH('/api/v1/nodes/{id}', { ...nodePath(ref), body: { name } }));
  print(ctx, `${ref} is now ${node.name} (${node.id})`);
  return 0;
}

async function label(args: string[], ctx: Context): Promise<number> {
  const usage = 'usage: dvic nodes label <node> key=value... [key-]...';
  const { values, positionals } = parse(args, {}, usage);
  if (values.help) return print(ctx, `${usage}\n\nSets labels; "key-" removes one.`), 0;
  if (positionals.length < 2) throw new UsageError(usage);
  const changes = parseLabels(positionals.slice(1), true);
  const { api } = connection(ctx);
  const { node } = await call(api.GET('/api/v1/nodes/{id}', nodePath(positionals[0]!)));
  const labels: Record<string, string> = { ...node.labels };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete labels[k];
    else labels[k] = v;
  }
  await call(api.PATCH('/api/v1/nodes/{id}', { ...nodePath(node.id), body: { labels } }));
  print(ctx, `${node.name}: ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(', ') || 'no labels'}`);
  return 0;
}

async function revoke(args: string[], ctx: Context): Promise<number> {
  const usage = 'usage: dvic nodes revoke <node>';
  const { values, positionals } = parse(args, {}, usage);
  if (values.help) return print(ctx, `${usage}\n\nDisconnects the node's agent and refuses it from now on.`), 0;
  if (positionals.length !== 1) throw new UsageError(usage);
  const { node } = await call(connection(ctx).api.POST('/api/v1/nodes/{id}/revoke', { ...nodePath(positionals[0]!), body: {} }));
  print(ctx, `${node.name} revoked`);
  return 0;
}
