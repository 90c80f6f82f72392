import { call } from '@dvic/client';
import { DEMO_HEALTH_TEXT, demoHealth, duration, untrustedReason, type LabDemo } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { NONE } from '../format/nodes.js';
import { renderTable, type Cell } from '../format/table.js';
import { nodeNames } from '../node-names.js';
import { followCommands } from './exec.js';

const USAGE = 'usage: dvic demos [<node>] [--state running|stopped|crashed|restarting] [--down] [--label key[=value]] [--json]\n       dvic demos start|stop|restart <demo> [--node <node>]';
const ACTIONS = ['start', 'stop', 'restart'] as const;
type Action = (typeof ACTIONS)[number];
const STATES = ['running', 'stopped', 'crashed', 'restarting'] as const;
const HEALTH_COLOR = { down: 'red', 'crash-loop': 'red', crashed: 'red', restarting: 'yellow', running: 'green', stopped: 'gray' } as const;

export async function demos(args: string[], ctx: Context): Promise<number> {
  if ((ACTIONS as readonly string[]).includes(args[0] ?? '')) return demoAction(args[0] as Action, args.slice(1), ctx);
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' }, state: { type: 'string' }, down: { type: 'boolean' }, label: { type: 'string' },
  }, USAGE);
  if (values.help) {
    return print(ctx, `${USAGE}\n\nDemos, one per (node, demo name) across restarts, problems first: state, restarts, expected or not, lines and errors.`), 0;
  }
  if (positionals.length > 1) throw new UsageError(USAGE);
  const state = values.state as string | undefined;
  if (state !== undefined && !(STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${STATES.join(', ')}\n${USAGE}`);
  const server = connection(ctx);
  const query = {
    ...(positionals[0] ? { node: positionals[0] } : {}), ...(state ? { state: state as LabDemo['state'] } : {}),
    ...(values.down ? { down: true } : {}), ...(typeof values.label === 'string' ? { label: values.label } : {}),
  };
  const [{ demos: list }, names] = await Promise.all([call(server.api.GET('/api/v1/demos', { params: { query } })), nodeNames(server)]);
  if (values.json) return print(ctx, JSON.stringify({ demos: list }, null, 2)), 0;
  if (!list.length) return print(ctx, 'no demos seen yet'), 0;
  const now = ctx.now();
  print(ctx, renderTable(['NODE', 'DEMO', 'STATE', 'RESTARTS', 'EXPECTED', 'LINES', 'ERRORS', 'LAST LINE', 'NOTE'], list.map((d) => [
    names.get(d.node_id) ?? d.node_id, d.name, stateCell(d, now), { text: String(d.restarts), align: 'right' },
    d.expected ? (d.schedule ? `yes, ${d.schedule.days.join(',')} ${d.schedule.open}-${d.schedule.close}` : 'yes') : 'no',
    { text: String(d.line_count), align: 'right' }, { text: String(d.error_count), align: 'right' },
    d.last_line_at ? `${duration(now - d.last_line_at)} ago` : NONE, noteCell(d),
  ]), ctx.color));
  return 0;
}

/** "running 5m", "down: crashed 2m", "stopped 1h". */
function stateCell(d: LabDemo, now: number): Cell {
  const health = demoHealth(d);
  const since = d.state === 'running' || d.state === 'restarting' ? d.started_at : d.ended_at;
  const words = health === 'down' || health === 'crash-loop' ? `${DEMO_HEALTH_TEXT[health]}: ${d.state}` : d.state;
  return { text: since === null ? words : `${words} ${duration(now - since)}`, color: HEALTH_COLOR[health] };
}

function noteCell(d: LabDemo): Cell {
  const latest = d.runs[0];
  const reason = latest ? untrustedReason(latest) : null;
  return reason ? { text: `⚠ untrusted: ${reason}`, color: 'yellow' } : { text: d.notes ?? '' };
}

/**
 * Runs the demo's start, stop or restart command (set on its page or with PATCH) on its node and
 * streams the output like `dvic exec`, exiting with the command's code.
 */
async function demoAction(action: Action, args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { node: { type: 'string' } }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`give one demo (name or id)\n${USAGE}`);
  const ref = positionals[0]!;
  const server = connection(ctx);
  const query = typeof values.node === 'string' ? { node: values.node } : {};
  const [{ demos: list }, names] = await Promise.all([call(server.api.GET('/api/v1/demos', { params: { query } })), nodeNames(server)]);
  const matches = list.filter((d) => d.id === ref || d.name === ref);
  if (!matches.length) throw new CliError(`no demo named ${ref}${values.node ? ` on ${values.node}` : ''} (dvic demos lists them)`);
  if (matches.length > 1) {
    throw new UsageError(`${ref} runs on several nodes (${matches.map((d) => names.get(d.node_id) ?? d.node_id).join(', ')}): pick one with --node`);
  }
  const demo = matches[0]!;
  return followCommands(ctx, server, async () => {
    const { command } = await call(server.api.POST('/api/v1/demos/{id}/actions/{action}', { params: { path: { id: demo.id, action } }, body: {} }));
    return [{ id: command.id, label: demo.name }];
  });
}
