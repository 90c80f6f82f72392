import { call } from '@dvic/client';
import { isAgentBehind, type AgentUpdateView } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import type { Connection } from '../connection.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { renderTable } from '../format/table.js';

const USAGE = `usage: dvic update                               the shipped agent version, and the nodes behind it
       dvic update <node>... [options]             update these nodes' agent to the shipped version
       dvic update --label key=value [options]
       dvic update --all [options]                 every online node
       dvic update --show ID | --pause ID | --resume ID | --cancel ID
options: --no-canary (do not update the first node alone first)  --force (also downgrade)
         --parallel N (at most N nodes at a time, default 5)  --no-wait (print the id and return)`;

const FINAL = ['done', 'failed', 'cancelled'];
const POLL_MS = 1000;

export async function update(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    label: { type: 'string' }, all: { type: 'boolean' }, 'no-canary': { type: 'boolean' }, force: { type: 'boolean' },
    parallel: { type: 'string' }, 'no-wait': { type: 'boolean' },
    show: { type: 'string' }, pause: { type: 'string' }, resume: { type: 'string' }, cancel: { type: 'string' },
  }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nFollows the update until every node is healthy, rolled back or failed; exits 0 only when all are updated.`), 0;
  const server = connection(ctx);
  for (const action of ['pause', 'resume', 'cancel'] as const) {
    const id = values[action] as string | undefined;
    if (id) return printUpdate(ctx, (await call(server.api.POST(`/api/v1/agent-updates/{id}/${action}`, { params: { path: { id } }, body: {} }))).update);
  }
  if (values.show) return printUpdate(ctx, (await call(server.api.GET('/api/v1/agent-updates/{id}', { params: { path: { id: values.show as string } } }))).update);
  const chosen = [positionals.length > 0, values.label !== undefined, Boolean(values.all)].filter(Boolean).length;
  if (chosen === 0) return overview(ctx, server);
  if (chosen > 1) throw new UsageError(`give nodes, --label or --all, not several\n${USAGE}`);
  const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
  if (parallel !== undefined && !(Number.isInteger(parallel) && parallel >= 1)) throw new UsageError('--parallel must be a whole number >= 1');
  const targets = values.all ? { all: true } : values.label !== undefined ? { label: values.label as string } : { nodes: positionals };
  const { id } = await call(server.api.POST('/api/v1/agent-updates', {
    body: { targets, canary: !values['no-canary'], ...(values.force ? { force: true } : {}), ...(parallel ? { max_parallel: parallel } : {}) },
  }));
  if (values['no-wait']) return print(ctx, id), 0;
  return follow(ctx, server, id);
}

/** The shipped version and each node's, the ones behind marked. */
async function overview(ctx: Context, server: Connection): Promise<number> {
  const { agent } = await call(server.api.GET('/api/v1/agent-release'));
  const { nodes } = await call(server.api.GET('/api/v1/nodes'));
  print(ctx, `shipped agent ${agent.version} (sha256 ${agent.sha256.slice(0, 12)}…)`);
  const rows = nodes.filter((n) => n.status !== 'revoked').map((n) => [n.name, n.status, n.agent_version ?? '-',
    isAgentBehind(n.agent_version, agent.version) ? { text: 'behind', color: 'yellow' as const } : '']);
  print(ctx, renderTable(['NODE', 'STATUS', 'AGENT', ''], rows, ctx.color));
  return 0;
}

/** Prints each node's step as it changes, until the update ends; 0 when every node was updated. */
async function follow(ctx: Context, server: Connection, id: string): Promise<number> {
  print(ctx, `update ${id}`);
  const seen = new Map<string, string>();
  for (;;) {
    const { update: u } = await call(server.api.GET('/api/v1/agent-updates/{id}', { params: { path: { id } } }));
    for (const n of u.nodes) {
      const line = `${n.name}: ${n.step ?? n.state}${n.detail ? ` (${n.detail})` : ''}`;
      if (n.state !== 'pending' && seen.get(n.node_id) !== line) print(ctx, line);
      seen.set(n.node_id, line);
    }
    if (FINAL.includes(u.state)) {
      const done = u.nodes.filter((n) => n.state === 'done').length;
      print(ctx, `${u.state}: ${done} of ${u.nodes.length} nodes on ${u.version}`);
      return u.state === 'done' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function printUpdate(ctx: Context, u: AgentUpdateView): number {
  print(ctx, `update ${u.id}: ${u.state}, agent ${u.version}${u.canary ? ', canary first' : ''}, at most ${u.max_parallel} at a time`);
  print(ctx, renderTable(['NODE', 'FROM', 'STATE', 'STEP', 'DETAIL'],
    u.nodes.map((n) => [n.name, n.from_version ?? '-', n.state, n.step ?? '-', n.detail ?? '']), ctx.color));
  return 0;
}
