import fs from 'node:fs';
import { call } from '@dvic/client';
import type { EnrollmentView } from '@dvic/protocol/shared';
import { parse, parseLabels } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { readLine } from './login.js';

export const ADD_OVER_SSH_USAGE = 'usage: dvic nodes add <name> --host IP[:port] --user U (--password-stdin | --key FILE) --via <node|server> [--labels k=v,...] [--accept-host-key SHA256:...]';
const REMOVE_USAGE = 'usage: dvic nodes remove <node> [--uninstall]';
const POLL_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** dvic nodes add ... --host: adds the machine over SSH and follows its steps until it is a live node. */
export async function addOverSsh(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {
    host: { type: 'string' }, user: { type: 'string', short: 'u' }, 'password-stdin': { type: 'boolean' }, key: { type: 'string' },
    via: { type: 'string' }, labels: { type: 'string' }, label: { type: 'string', multiple: true }, 'accept-host-key': { type: 'string' },
  }, ADD_OVER_SSH_USAGE);
  if (values.help) return print(ctx, `${ADD_OVER_SSH_USAGE}\n\nConnects to the machine over SSH (through the source node --via, or directly with --via server),\ninstalls the agent as a systemd service and waits for it to come online. The password is read from stdin\nand never stored. Without --accept-host-key the host key is shown and asked about on the terminal;\nwith no terminal the command stops (exit 3): run it again with --accept-host-key.`), 0;
  if (positionals.length !== 1 || !values.host || !values.user || !values.via || !values['password-stdin'] === !values.key) throw new UsageError(ADD_OVER_SSH_USAGE);
  const [host, portText] = splitHostPort(values.host as string);
  const labels = parseLabels([...String(values.labels ?? '').split(',').filter(Boolean), ...((values.label as string[] | undefined) ?? [])]) as Record<string, string>;
  const secret = values['password-stdin'] ? { password: await readLine(ctx.stdin) } : { private_key: fs.readFileSync(values.key as string, 'utf8') };
  const { api } = connection(ctx);
  const { enrollment } = await call(api.POST('/api/v1/enrollments', {
    body: {
      name: positionals[0]!, host, ...(portText ? { port: Number(portText) } : {}), username: values.user as string, via: values.via as string, labels, ...secret,
      ...(values['accept-host-key'] ? { accept_host_key: values['accept-host-key'] as string } : {}),
    },
  }));
  let done = await follow(ctx, enrollment.id);
  if (done.state === 'awaiting_host_key') {
    const accepted = await askHostKey(ctx, done);
    if (accepted === null) {
      print(ctx, `The host key of ${done.host}:${done.port} is ${done.host_key_fingerprint}.\nNo terminal to ask on: if that is the machine's key, run the same command again with --accept-host-key ${done.host_key_fingerprint}`);
      return 3;
    }
    if (!accepted) {
      print(ctx, 'Host key not accepted: nothing was installed.');
      return 3;
    }
    await call(api.POST('/api/v1/enrollments/{id}/accept', { params: { path: { id: enrollment.id } }, body: {} }));
    done = await follow(ctx, enrollment.id);
  }
  if (done.state === 'failed') {
    ctx.stderr.write(`failed at ${done.error!.step}: ${done.error!.message}\n${done.error!.output ? `${done.error!.output.trimEnd()}\n` : ''}`);
    return 1;
  }
  print(ctx, `${done.name} is online (node ${done.node_id}).`);
  return 0;
}

/** Shows the host key on the terminal and asks; null when there is no terminal to ask on. */
async function askHostKey(ctx: Context, view: EnrollmentView): Promise<boolean | null> {
  const terminal = ctx.terminal?.() ?? null;
  if (!terminal) return null;
  try {
    terminal.output.write(`The host key of ${view.host}:${view.port} is ${view.host_key_fingerprint}.\nIs that the machine's key: accept? [y/N] `);
    return /^y(es)?$/i.test((await readLine(terminal.input)).trim());
  } finally {
    terminal.close();
  }
}

/** Prints each step as it ends, until the enrollment stops (bounded: the server ends every step). */
async function follow(ctx: Context, id: string): Promise<EnrollmentView> {
  const { api } = connection(ctx);
  const shown = new Set<string>();
  for (;;) {
    const { enrollment } = await call(api.GET('/api/v1/enrollments/{id}', { params: { path: { id } } }));
    for (const step of enrollment.steps) {
      const key = `${step.name}:${step.status}`;
      if (['ok', 'failed', 'skipped'].includes(step.status) && !shown.has(key)) {
        shown.add(key);
        print(ctx, `  ${step.status.padEnd(7)} ${step.name.padEnd(13)} ${step.duration_ms === null ? '' : `${step.duration_ms} ms`}`.trimEnd());
      }
    }
    if (enrollment.state !== 'running') return enrollment;
    await sleep(POLL_MS);
  }
}

function splitHostPort(value: string): [string, string | undefined] {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(value);
  if (!match) throw new UsageError(`--host must be IP[:port]\n${ADD_OVER_SSH_USAGE}`);
  return [match[1]!.replace(/^\[|\]$/g, ''), match[2]];
}

/**
 * dvic nodes remove <node> [--uninstall]: with --uninstall the node's own agent runs install.sh
 * --uninstall (outside its service, which it stops), then the node's key is revoked either way.
 */
export async function remove(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { uninstall: { type: 'boolean' } }, REMOVE_USAGE);
  if (values.help) return print(ctx, `${REMOVE_USAGE}\n\nRevokes the node's key; --uninstall first removes the agent from the machine (service, files).`), 0;
  if (positionals.length !== 1) throw new UsageError(REMOVE_USAGE);
  const server = connection(ctx);
  const { node } = await call(server.api.GET('/api/v1/nodes/{id}', { params: { path: { id: positionals[0]! } } }));
  if (values.uninstall) {
    if (node.status !== 'online') throw new CliError(`${node.name} is ${node.status}: its agent cannot uninstall itself (run install.sh --uninstall on it)`);
    const script = await (await fetch(new URL('/install.sh', server.url))).text();
    const command = 'f=$(mktemp) && cat > "$f" && systemd-run --quiet --collect --unit dvic-agent-uninstall /bin/sh -c "sleep 1; sh $f --uninstall; rm -f $f"';
    const started = await call(server.api.POST('/api/v1/nodes/{id}/exec', { params: { path: { id: node.id } }, body: { command, stdin: script, timeout_s: 60 } }));
    const result = await waitForCommand(ctx, started.id);
    if (result.status !== 'succeeded') throw new CliError(`the uninstall did not start on ${node.name}: ${result.stderr || result.error || result.status}`);
    print(ctx, `Uninstalling the agent from ${node.name}.`);
  }
  await call(server.api.POST('/api/v1/nodes/{id}/revoke', { params: { path: { id: node.id } }, body: {} }));
  print(ctx, `${node.name} (${node.id}) is revoked.`);
  return 0;
}

async function waitForCommand(ctx: Context, id: string) {
  const { api } = connection(ctx);
  for (let i = 0; i < 400; i++) {
    const { command } = await call(api.GET('/api/v1/commands/{id}', { params: { path: { id } } }));
    if (command.status !== 'running' && command.status !== 'queued') return command;
    await sleep(POLL_MS);
  }
  throw new CliError('the uninstall command did not finish within 2 minutes');
}
