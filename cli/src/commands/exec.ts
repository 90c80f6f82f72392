import os from 'node:os';
import type { ApiClient } from '../api-client.js';
import { parse } from '../args.js';
import { client, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { paint } from '../format/color.js';
import { LiveConnection } from '../live.js';
import { resolveNode } from '../resolve-node.js';

const USAGE = `usage: dvic exec <node> [options] -- command [args...]
       dvic exec --label key=value [options] -- command [args...]
       dvic exec --all [options] -- command [args...]
       dvic exec <node> [options] -c 'shell string'
options: --timeout SECONDS  --cwd DIR  --user NAME  --queue SECONDS (run when an offline node returns)`;

const FINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'lost', 'expired', 'error']);

interface Followed {
  id: string;
  node: string;
  printed: { stdout: number; stderr: number };
  partial: { stdout: string; stderr: string };
  done?: any;
}

export async function exec(args: string[], ctx: Context): Promise<number> {
  const split = args.indexOf('--');
  const { values, positionals } = parse(split >= 0 ? args.slice(0, split) : args, {
    label: { type: 'string' }, all: { type: 'boolean' }, command: { type: 'string', short: 'c' }, timeout: { type: 'string' },
    cwd: { type: 'string' }, user: { type: 'string' }, queue: { type: 'string' },
  }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nStreams the output (prefixed by node when several) and exits with the command's code.`), 0;
  const argv = split >= 0 ? args.slice(split + 1) : [];
  if ((argv.length > 0) === (values.command !== undefined)) throw new UsageError(`give the command after -- or with -c\n${USAGE}`);
  const targets = [positionals.length > 0, values.label !== undefined, Boolean(values.all)].filter(Boolean).length;
  if (targets !== 1 || positionals.length > 1) throw new UsageError(`give one node, --label or --all\n${USAGE}`);
  const spec = {
    ...(values.command !== undefined ? { command: values.command } : { argv }),
    ...(values.timeout ? { timeout_s: number('--timeout', values.timeout as string) } : {}),
    ...(values.queue ? { queue_ttl_s: number('--queue', values.queue as string) } : {}),
    ...(values.cwd ? { cwd: values.cwd } : {}), ...(values.user ? { user: values.user } : {}),
  };
  const api = client(ctx);
  const nodes: { id: string; name: string }[] = (await api.get('/api/v1/nodes')).nodes;
  const names = new Map(nodes.map((n) => [n.id, n.name]));
  return run(ctx, api, names, async () => {
    if (positionals.length) {
      const node = resolveNode(nodes, positionals[0]!);
      const { id } = await api.post(`/api/v1/nodes/${node.id}/exec`, spec);
      return [{ id, node_id: node.id }];
    }
    const { commands } = await api.post('/api/v1/exec', { targets: values.all ? { all: true } : { label: values.label }, ...spec });
    return commands;
  });
}

function number(flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new UsageError(`${flag} must be a positive number of seconds`);
  return n;
}

/** Starts the command(s) once the live stream is open, streams output, returns the exit code. */
async function run(ctx: Context, api: ApiClient, names: Map<string, string>, start: () => Promise<{ id: string; node_id: string }[]>): Promise<number> {
  const followed = new Map<string, Followed>();
  let prefixed = false;
  let settle: (code: number) => void = () => undefined;
  let fail: (err: Error) => void = () => undefined;
  const finished = new Promise<number>((resolve, reject) => { settle = resolve; fail = reject; });

  const write = (f: Followed, stream: 'stdout' | 'stderr', text: string) => {
    const out = stream === 'stdout' ? ctx.stdout : ctx.stderr;
    if (!prefixed) return void out.write(text);
    const lines = (f.partial[stream] + text).split('\n');
    f.partial[stream] = lines.pop()!;
    for (const line of lines) out.write(`${paint(`[${f.node}]`, 'cyan', ctx.color)} ${line}\n`);
  };
  /** Prints what is new in a chunk that starts at `offset` of its stream. */
  const take = (f: Followed, stream: 'stdout' | 'stderr', offset: number, data: string) => {
    const skip = f.printed[stream] - offset;
    if (skip >= data.length) return;
    write(f, stream, data.slice(Math.max(0, skip)));
    f.printed[stream] = offset + data.length;
  };
  const complete = async (f: Followed) => {
    const { command } = await api.get(`/api/v1/commands/${f.id}`);
    take(f, 'stdout', 0, command.stdout);
    take(f, 'stderr', 0, command.stderr);
    for (const stream of ['stdout', 'stderr'] as const) if (f.partial[stream]) write(f, stream, '\n');
    f.done = command;
    if ([...followed.values()].every((x) => x.done)) settle(exitCode(ctx, [...followed.values()], prefixed));
  };

  const live = new LiveConnection(api, {
    onOpen: () => {
      if (followed.size) return; // a reconnection: the final fetch fills any gap
      start().then(async (commands) => {
        prefixed = commands.length > 1;
        for (const c of commands) followed.set(c.id, { id: c.id, node: names.get(c.node_id) ?? c.node_id, printed: { stdout: 0, stderr: 0 }, partial: { stdout: '', stderr: '' } });
        live.send({ type: 'commands.subscribe', data: { ids: commands.map((c) => c.id) } });
        for (const f of followed.values()) {
          const { command } = await api.get(`/api/v1/commands/${f.id}`);
          if (FINAL.has(command.status)) await complete(f);
          else {
            take(f, 'stdout', 0, command.stdout);
            take(f, 'stderr', 0, command.stderr);
          }
        }
      }).catch(fail);
    },
    onStatus: (status, detail) => { if (status === 'lost') ctx.stderr.write(`dvic: live connection lost (${detail}), retrying…\n`); },
    onMessage: (m) => {
      const f = followed.get(m.data?.command_id ?? m.data?.command?.id);
      if (!f || f.done) return;
      if (m.type === 'command.output') take(f, m.data.stream, m.data.offset, m.data.data);
      else if (m.type === 'command.updated' && FINAL.has(m.data.command.status)) complete(f).catch(fail);
    },
  });
  const interrupt = () => {
    for (const f of followed.values()) if (!f.done) void api.post(`/api/v1/commands/${f.id}/cancel`).catch(() => undefined);
    ctx.stderr.write('dvic: cancelling…\n');
  };
  process.on('SIGINT', interrupt);
  live.start();
  try {
    return await finished;
  } finally {
    process.removeListener('SIGINT', interrupt);
    live.stop();
  }
}

function exitCode(ctx: Context, followed: Followed[], several: boolean): number {
  for (const f of followed) {
    const c = f.done;
    if (c.status === 'succeeded' || (c.status === 'failed' && !several && c.exit_code !== null)) continue;
    const why = c.signal ? `killed by ${c.signal}` : c.error ?? c.status.replace('_', ' ');
    ctx.stderr.write(`dvic: ${several ? `[${f.node}] ` : ''}${c.status === 'failed' ? `exit code ${c.exit_code ?? '-'}` : why}${c.truncated ? ' (output truncated)' : ''}\n`);
  }
  if (several) return followed.every((f) => f.done.status === 'succeeded') ? 0 : 1;
  const c = followed[0]!.done;
  if (c.exit_code !== null) return c.exit_code;
  const signal = c.signal && (os.constants.signals as Record<string, number>)[c.signal];
  return signal ? 128 + signal : 1;
}

