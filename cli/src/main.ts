import { readFileSync } from 'node:fs';
import { ApiError } from '@dvic/client';
import { apiErrorText } from './api-error-text.js';
import { alerts } from './commands/alerts.js';
import { demos } from './commands/demos.js';
import { devices } from './commands/devices.js';
import { exec } from './commands/exec.js';
import { login, logout } from './commands/login.js';
import { logs } from './commands/logs.js';
import { node } from './commands/node.js';
import { nodes } from './commands/nodes.js';
import { shell } from './commands/shell.js';
import { loadConfig } from './config-store.js';
import { passwd, users } from './commands/users.js';
import { defaultContext, print, type Command, type Context } from './context.js';
import { CliError, UsageError } from './errors.js';
import { artifacts } from './commands/artifacts.js';
import { deploy } from './commands/deploy.js';
import { update } from './commands/update.js';

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  login: { run: login, summary: 'sign in to a DVIC server and keep an API token' },
  logout: { run: logout, summary: 'revoke and forget the stored token' },
  nodes: { run: nodes, summary: 'list nodes (watch, add, rename, label, revoke)' },
  node: { run: node, summary: 'details of one node' },
  devices: { run: devices, summary: 'keepalive devices (ESP32, cron, scripts): list, add, pause, resume, remove, urls' },
  demos: { run: demos, summary: 'demo processes, alive or dead' },
  logs: { run: logs, summary: 'search and follow logs' },
  exec: { run: exec, summary: 'run a command on one or many nodes' },
  shell: { run: shell, summary: 'open a terminal on a node' },
  users: { run: users, summary: 'users and roles (admins): list, add, role, disable, enable, remove, reset-password' },
  passwd: { run: passwd, summary: 'change your own password' },
  artifacts: { run: artifacts, summary: 'files kept for deploys: list, upload, delete' },
  deploy: { run: deploy, summary: 'deploy an artifact to nodes with per-node progress; status, rollback, cancel' },
  alerts: { run: alerts, summary: 'alerts firing and past: list, ack, mute, mutes, unmute' },
  update: { run: update, summary: 'update node agents to the shipped version (canary first), pause, cancel' },
};

const HELP = `usage: dvic <command> [options]   (dvic <command> --help for its options)

${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`).join('\n')}

Config: ~/.config/dvic/config.json (or $DVIC_CONFIG); $DVIC_URL + $DVIC_TOKEN override it.
Exit codes: 0 success, 1 failure, 2 usage error.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `dvic ${pkg.version}`;
}

/** Runs the CLI; returns the exit code (errors are one line on stderr). */
export async function main(argv: string[], ctx: Context = defaultContext()): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') return print(ctx, HELP), name ? 0 : 2;
    if (name === '--version' || name === '-V') return print(ctx, version()), 0;
    const command = COMMANDS[name];
    if (!command) throw new UsageError(`unknown command "${name}"\n${HELP}`);
    return await command.run(rest, ctx);
  } catch (err) {
    ctx.stderr.write(`dvic: ${errorLine(err, name, ctx)}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

function errorLine(err: unknown, name: string | undefined, ctx: Context): string {
  // One line: the problem, and where the full usage is.
  if (err instanceof UsageError) return `${err.message.split('\n')[0]}${name && COMMANDS[name] ? ` (see dvic ${name} --help)` : ' (see dvic --help)'}`;
  if (err instanceof ApiError) return apiErrorText(err, serverUrl(ctx));
  if (err instanceof CliError) return err.message;
  return `unexpected error: ${(err as Error).stack ?? String(err)}`;
}

function serverUrl(ctx: Context): string {
  try {
    return loadConfig(ctx.env)?.url ?? 'the server';
  } catch {
    return 'the server';
  }
}
