import { call, type DvicApi } from '@dvic/client';
import { bytes, type DeploymentView } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { paint } from '../format/color.js';
import { findArtifact } from './artifacts.js';

const USAGE = `usage: dvic deploy <artifact> (<node>... | --label key=value | --all) --path /opt/dvic-demos/<name> [options]
       dvic deploy status <deployment>
       dvic deploy list [--json]
       dvic deploy rollback|cancel|pause|resume <deployment>
options: --extract (unpack a .tar.gz or .zip)  --mode 0755  --owner user[:group]
         --pre 'command'  --post 'command'  --parallel N  --no-wait

Follows each node's progress and exits 0 when every node is done, 1 otherwise.`;

const FINAL = new Set(['done', 'failed', 'cancelled', 'rolled_back']);
const POLL_MS = 500;
const byId = (id: string) => ({ params: { path: { id } } });

/** One line per node: name, result, step, bytes. */
export function nodeLines(d: DeploymentView, color: boolean): string {
  return d.nodes.map((n) => {
    const tint = n.result === 'done' || n.result === 'rolled_back' ? 'green' : n.result === 'failed' ? 'red' : undefined;
    const progress = n.step === 'downloading' ? ` ${bytes(n.bytes_done)}/${bytes(d.artifact.size)}` : '';
    const resumed = n.resumed_from > 0 ? ` (resumed at ${bytes(n.resumed_from)})` : '';
    return `${n.node_name}: ${paint(n.result, tint, color)}${n.step ? ` ${n.step}` : ''}${progress}${resumed}${n.message ? ` - ${n.message}` : ''}`;
  }).join('\n');
}

async function follow(api: DvicApi, id: string, ctx: Context): Promise<number> {
  let shown = '';
  let interrupted = false;
  const stop = ctx.onInterrupt(() => { interrupted = true; });
  try {
    for (;;) {
      const { deployment } = await call(api.GET('/api/v1/deployments/{id}', byId(id)));
      const text = nodeLines(deployment, ctx.color);
      if (text !== shown) print(ctx, (shown = text) + '\n');
      if (FINAL.has(deployment.state)) {
        print(ctx, `deployment ${deployment.id}: ${deployment.state}`);
        return deployment.state === 'done' || deployment.state === 'rolled_back' ? 0 : 1;
      }
      if (interrupted) return print(ctx, `still ${deployment.state}: dvic deploy status ${id}`), 1;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    stop();
  }
}

export async function deploy(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    label: { type: 'string' }, all: { type: 'boolean' }, path: { type: 'string' }, extract: { type: 'boolean' }, mode: { type: 'string' },
    owner: { type: 'string' }, pre: { type: 'string' }, post: { type: 'string' }, parallel: { type: 'string' }, 'no-wait': { type: 'boolean' },
    json: { type: 'boolean' },
  }, USAGE);
  if (values.help) return print(ctx, USAGE), 0;
  const { api } = connection(ctx);
  const [first, ...rest] = positionals;
  if (!first) throw new UsageError(USAGE);
  if (first === 'list') {
    const { deployments } = await call(api.GET('/api/v1/deployments'));
    print(ctx, values.json ? JSON.stringify(deployments, null, 2) : deployments.map((d) =>
      `${d.id}  ${d.state.padEnd(12)} ${d.artifact.name}@${d.artifact.version} -> ${d.path} (${d.nodes.length} nodes)`).join('\n') || 'No deployments.');
    return 0;
  }
  if (first === 'status') return follow(api, needId(rest), ctx);
  if (first === 'rollback' || first === 'cancel' || first === 'pause' || first === 'resume') {
    const id = needId(rest);
    await call(api.POST(`/api/v1/deployments/{id}/${first}`, { ...byId(id), body: {} }));
    return first === 'rollback' && !values['no-wait'] ? follow(api, id, ctx) : (print(ctx, `deployment ${id}: ${first} asked`), 0);
  }
  const targets = values.all ? { all: true } : values.label ? { label: values.label as string } : { nodes: rest };
  if ([rest.length > 0, values.label !== undefined, Boolean(values.all)].filter(Boolean).length !== 1) throw new UsageError(`give nodes, --label or --all\n${USAGE}`);
  if (!values.path) throw new UsageError(`give --path\n${USAGE}`);
  const artifact = await findArtifact(api, first);
  const optional = { mode: values.mode, owner: values.owner, pre_command: values.pre, post_command: values.post } as Record<string, string | undefined>;
  const body = {
    artifact: artifact.id, targets, path: values.path as string, extract: Boolean(values.extract),
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    ...(values.parallel ? { max_parallel: Number(values.parallel) } : {}),
  };
  const { id } = await call(api.POST('/api/v1/deployments', { body }));
  print(ctx, `deployment ${id}: ${artifact.name}@${artifact.version} -> ${values.path as string}`);
  return values['no-wait'] ? 0 : follow(api, id, ctx);
}

function needId(rest: string[]): string {
  if (!rest[0]) throw new UsageError(`give a deployment id\n${USAGE}`);
  return rest[0];
}
