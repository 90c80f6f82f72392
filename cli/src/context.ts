import { ApiClient } from './api-client.js';
import { loadConfig } from './config-store.js';
import { CliError } from './errors.js';
import { colorEnabled } from './format/color.js';

/** What a command works with; tests give their own streams and environment. */
export interface Context {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream | (NodeJS.WritableStream & { isTTY?: boolean; columns?: number });
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => void };
  color: boolean;
  now: () => number;
}

export function defaultContext(): Context {
  return { env: process.env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, color: colorEnabled(), now: Date.now };
}

/** The API client for the stored login (or DVIC_URL + DVIC_TOKEN). */
export function client(ctx: Context): ApiClient {
  const config = loadConfig(ctx.env);
  if (!config) throw new CliError('not signed in: run dvic login <url>');
  return ApiClient.from(config);
}

export function print(ctx: Context, text = ''): void {
  ctx.stdout.write(text + '\n');
}

export type Command = (args: string[], ctx: Context) => Promise<number>;
