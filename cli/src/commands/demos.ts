import { call } from '@dvic/client';
import type { DemoView } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { demoStateCell, lastLineText, NONE, trustCell } from '../format/nodes.js';
import { renderTable } from '../format/table.js';
import { nodeNames } from '../node-names.js';

const USAGE = 'usage: dvic demos [<node>] [--json]';

export async function demos(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nDemo processes: alive or dead, since when, lines and errors; a warning when another user owns a demo's log file.`), 0;
  if (positionals.length > 1) throw new UsageError(USAGE);
  const { list, names } = await fetchDemos(ctx, positionals[0]);
  if (values.json) return print(ctx, JSON.stringify({ demos: list }, null, 2)), 0;
  if (!list.length) return print(ctx, 'no demos seen yet'), 0;
  const now = ctx.now();
  print(ctx, renderTable(['NODE', 'DEMO', 'STATE', 'PID', 'CONTAINER', 'LINES', 'ERRORS', 'LAST LINE', 'NOTE'], list.map((d) => [
    names.get(d.node_id) ?? d.node_id, d.demo, demoStateCell(d, now), String(d.pid), d.container?.name ?? d.container?.id?.slice(0, 12) ?? NONE,
    { text: String(d.line_count), align: 'right' }, { text: String(d.error_count), align: 'right' }, lastLineText(d, now), trustCell(d),
  ]), ctx.color));
  return 0;
}

/** The demos of one node (looked up by the server, with its name), or of every node. */
async function fetchDemos(ctx: Context, ref: string | undefined): Promise<{ list: DemoView[]; names: Map<string, string> }> {
  const server = connection(ctx);
  if (ref) {
    const { node } = await call(server.api.GET('/api/v1/nodes/{id}', { params: { path: { id: ref } } }));
    return { list: node.demos, names: new Map([[node.id, node.name]]) };
  }
  const [{ demos: list }, names] = await Promise.all([call(server.api.GET('/api/v1/demos')), nodeNames(server)]);
  return { list, names };
}
