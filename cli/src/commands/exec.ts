import os from 'node:os';
import { call } from '@dvic/client';
import { isFinalStatus, type CommandView, type LiveClientMessage } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import type { Connection } from '../connection.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { paint } from '../format/color.js';
import { LiveConnection } from '../live.js';
import { nodeNames } from '../node-names.js';

const USAGE = `usage: dvic exec <node> [options] -- command [args...]
       dvic exec --label key=value [options] -- command [args...]
       dvic exec --all [options] -- command [args...]
       dvic exec <node> [options] -c 'shell string'
options: --timeout SECONDS  --cwd DIR  --user NAME  --queue SECONDS (run when an offline node returns)`;

type Stream = 'stdout' | 'stderr';

/** A started command: its id, and the name its output lines are prefixed with when there are several. */
export interface Started {
  id: string;
  label: string;
}

interface Followed extends Started {
  printed: Record<Stream, number>;
  partial: Record<Stream, string>;
  done?: CommandView;
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
    ...(values.command !== undefined ? { command: values.command as string } : { argv }),
    ...(values.timeout ? { timeout_s: seconds('--timeout', values.timeout as string) } : {}),
    ...(values.queue ? { queue_ttl_s: seconds('--queue', values.queue as string) } : {}),
    ...(values.cwd ? { cwd: values.cwd as string } : {}), ...(values.user ? { user: values.user as string } : {}),
  };
  const server = connection(ctx);
  const ref = positionals[0];
  if (ref) {
    // The server finds the node (id, name or id prefix) and lists the candidates when ambiguous.
    return followCommands(ctx, server, async () => [{ id: (await call(server.api.POST('/api/v1/nodes/{id}/exec', { params: { path: { id: ref } }, body: spec }))).id, label: ref }]);
  }
  const names = await nodeNames(server);
  return followCommands(ctx, server, async () => {
    const { commands } = await call(server.api.POST('/api/v1/exec', { body: { targets: values.all ? { all: true } : { label: values.label as string }, ...spec } }));
    return commands.map((c) => ({ id: c.id, label: names.get(c.node_id) ?? c.node_id }));
  });
}

function seconds(flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new UsageError(`${flag} must be a positive number of seconds`);
  return n;
}

/** Starts the command(s) once the live stream is open, streams output, returns the exit code. */
export async function followCommands(ctx: Context, server: Connection, start: () => Promise<Started[]>): Promise<number> {
  const followed = new Map<string, Followed>();
  let started: Promise<void> | undefined;
  let prefixed = false;
  let settle: (code: number) => void = () => undefined;
  let fail: (err: Error) => void = () => undefined;
  const finished = new Promise<number>((resolve, reject) => { settle = resolve; fail = reject; });
  const fetchCommand = async (id: string) => (await call(server.api.GET('/api/v1/commands/{id}', { params: { path: { id } } }))).command;

  const write = (f: Followed, stream: Stream, text: string) => {
    const out = stream === 'stdout' ? ctx.stdout : ctx.stderr;
    if (!prefixed) return void out.write(text);
    const lines = (f.partial[stream] + text).split('\n');
    f.partial[stream] = lines.pop()!;
    for (const line of lines) out.write(`${paint(`[${f.label}]`, 'cyan', ctx.color)} ${line}\n`);
  };
  /** Prints what is new in a chunk that starts at `offset` of its stream. */
  const take = (f: Followed, stream: Stream, offset: number, data: string) => {
    const skip = f.printed[stream] - offset;
    if (skip >= data.length) return;
    write(f, stream, data.slice(Math.max(0, skip)));
    f.printed[stream] = offset + data.length;
  };
  const complete = async (f: Followed) => {
    const command = await fetchCommand(f.id);
    take(f, 'stdout', 0, command.stdout);
    take(f, 'stderr', 0, command.stderr);
    for (const stream of ['stdout', 'stderr'] as const) if (f.partial[stream]) write(f, stream, '\n');
    f.done = command;
    if ([...followed.values()].every((x) => x.done)) settle(exitCode(ctx, [...followed.values()], prefixed));
  };
  const catchUp = async (f: Followed) => {
    const command = await fetchCommand(f.id);
    if (isFinalStatus(command.status)) return complete(f);
    take(f, 'stdout', 0, command.stdout);
    take(f, 'stderr', 0, command.stderr);
  };

  /** Follows the commands on this connection, and fetches what came while it was not. */
  const follow = async (send: (m: LiveClientMessage) => void) => {
    const [first, ...rest] = [...followed.keys()];
    if (first) send({ type: 'commands.subscribe', data: { ids: [first, ...rest] } });
    for (const f of followed.values()) if (!f.done) await catchUp(f);
  };
  const live = new LiveConnection(server, {
    onOpen: (send) => {
      // Started once, when the stream is first open, so that no output goes by unseen; followed
      // again on every reconnection.
      started ??= start().then((commands) => {
        prefixed = commands.length > 1;
        for (const c of commands) followed.set(c.id, { ...c, printed: { stdout: 0, stderr: 0 }, partial: { stdout: '', stderr: '' } });
      });
      started.then(() => follow(send)).catch(fail);
    },
    onStatus: (status, detail) => { if (status === 'lost') ctx.stderr.write(`dvic: live connection lost (${detail}), retrying…\n`); },
    onMessage: (m) => {
      if (m.type === 'command.output') {
        const f = followed.get(m.data.command_id);
        if (f && !f.done) take(f, m.data.stream, m.data.offset, m.data.data);
      } else if (m.type === 'command.updated') {
        const f = followed.get(m.data.command.id);
        if (f && !f.done && isFinalStatus(m.data.command.status)) complete(f).catch(fail);
      }
    },
    onEnd: fail,
  });
  const stopListening = ctx.onInterrupt(() => {
    for (const f of followed.values()) if (!f.done) void call(server.api.POST('/api/v1/commands/{id}/cancel', { params: { path: { id: f.id } }, body: {} })).catch(() => undefined);
    ctx.stderr.write('dvic: cancelling…\n');
  });
  live.start();
  try {
    return await finished;
  } finally {
    stopListening();
    live.stop();
  }
}

function exitCode(ctx: Context, followed: Followed[], several: boolean): number {
  for (const { done: c, label } of followed) {
    if (!c || c.status === 'succeeded' || (c.status === 'failed' && !several && c.exit_code !== null)) continue;
    const why = c.signal ? `killed by ${c.signal}` : c.error ?? c.status.replace('_', ' ');
    ctx.stderr.write(`dvic: ${several ? `[${label}] ` : ''}${c.status === 'failed' ? `exit code ${c.exit_code ?? '-'}` : why}${c.truncated ? ' (output truncated)' : ''}\n`);
  }
  if (several) return followed.every((f) => f.done?.status === 'succeeded') ? 0 : 1;
  const c = followed[0]!.done!;
  if (c.exit_code !== null) return c.exit_code;
  const signal = c.signal && (os.constants.signals as Record<string, number>)[c.signal];
  return signal ? 128 + signal : 1;
}
