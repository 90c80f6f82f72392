import fs from 'node:fs';
import { loadConfig } from './config-store.js';
import { connect, type Connection } from './connection.js';
import { CliError } from './errors.js';
import { colorEnabled } from './format/color.js';

/** What a command works with; tests give their own streams, environment and Ctrl-C. */
export interface Context {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream | (NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number });
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
  color: boolean;
  now: () => number;
  /** Calls the handler on Ctrl-C (or SIGTERM) until the returned function is called. */
  onInterrupt: (handler: () => void) => () => void;
  /** The user's terminal for a question (stdin may carry a password), or null when there is none. */
  terminal?: () => Terminal | null;
}

export interface Terminal {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  close: () => void;
}

/** /dev/tty when this process has a controlling terminal (not under cron, CI or a pipe-only ssh). */
function openTerminal(): Terminal | null {
  let fd: number;
  try {
    fd = fs.openSync('/dev/tty', 'r+');
  } catch {
    return null;
  }
  const input = fs.createReadStream('', { fd, autoClose: false });
  const output = fs.createWriteStream('', { fd, autoClose: false });
  return { input, output, close: () => { input.destroy(); output.end(); fs.closeSync(fd); } };
}

function onProcessInterrupt(handler: () => void): () => void {
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
  };
}

export function defaultContext(): Context {
  return {
    env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, color: colorEnabled(), now: Date.now,
    onInterrupt: onProcessInterrupt, terminal: openTerminal,
  };
}

/** The server of the stored login (or DVIC_URL + DVIC_TOKEN). */
export function connection(ctx: Context): Connection {
  const config = loadConfig(ctx.env);
  if (!config) throw new CliError('not signed in: run dvic login <url>');
  return connect(config);
}

export function print(ctx: Context, text = ''): void {
  ctx.stdout.write(text + '\n');
}

export type Command = (args: string[], ctx: Context) => Promise<number>;
