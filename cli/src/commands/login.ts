import os from 'node:os';
import { ApiError, call, createApiClient } from '@dvic/client';
import { apiErrorText } from '../api-error-text.js';
import { parse } from '../args.js';
import { loadConfig, removeConfig, saveConfig } from '../config-store.js';
import { connect } from '../connection.js';
import { print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';

const USAGE = 'usage: dvic login <url> [--user NAME] [--password-stdin]';

export async function login(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { user: { type: 'string', short: 'u' }, 'password-stdin': { type: 'boolean' } }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nSigns in, creates an API token and stores it in ~/.config/dvic/config.json (0600).\nPassword: --password-stdin, $DVIC_PASSWORD, or a prompt.`), 0;
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const url = normalizeUrl(positionals[0]!);
  const username = (values.user as string | undefined) ?? 'admin';
  const password = values['password-stdin'] ? await readLine(ctx.stdin) : ctx.env.DVIC_PASSWORD ?? await prompt(ctx, `Password for ${username}@${url}: `);
  const created = await createToken(url, username, password);
  const file = saveConfig({ url, token: created.token, token_id: created.info.id }, ctx.env);
  print(ctx, `Signed in to ${url} as ${username}; token saved in ${file}`);
  return 0;
}

export async function logout(args: string[], ctx: Context): Promise<number> {
  const { values } = parse(args, {}, 'usage: dvic logout');
  if (values.help) return print(ctx, 'usage: dvic logout\n\nRevokes the stored API token and forgets it.'), 0;
  const config = loadConfig(ctx.env);
  if (!config) throw new CliError('not signed in');
  if (config.token_id !== undefined) {
    await call(connect(config).api.DELETE('/api/v1/tokens/{id}', { params: { path: { id: config.token_id } }, body: {} })).catch(() => undefined);
  }
  removeConfig(ctx.env);
  print(ctx, `Signed out of ${config.url}`);
  return 0;
}

function normalizeUrl(raw: string): string {
  const url = /^https?:\/\//.test(raw) ? raw : `http://${raw}`;
  try {
    return new URL(url).origin;
  } catch {
    throw new UsageError(`"${raw}" is not a URL\n${USAGE}`);
  }
}

/** Signs in with the password, then makes an API token with that session (the password is kept nowhere). */
async function createToken(url: string, username: string, password: string) {
  const api = createApiClient({ baseUrl: url });
  try {
    let cookie = '';
    await call(api.POST('/api/v1/auth/login', { body: { username, password } }).then((result) => {
      cookie = result.response.headers.get('set-cookie')?.split(';')[0] ?? '';
      return result;
    }));
    return await call(api.POST('/api/v1/tokens', { body: { name: `dvic-cli@${os.hostname()}` }, headers: { cookie } }));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    throw new CliError(err.status === 401 || err.status === 429 ? `sign-in refused: ${err.message}` : apiErrorText(err, url));
  }
}

export function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\n')) {
        stream.pause();
        resolve(data.split('\n')[0]!.replace(/\r$/, ''));
      }
    });
    stream.on('end', () => resolve(data.replace(/\r?\n$/, '')));
  });
}

/** Asks for a password without echoing it on a terminal; otherwise reads the piped line. */
export async function prompt(ctx: Context, question: string): Promise<string> {
  if (!ctx.stdin.isTTY || !ctx.stdin.setRawMode) {
    const piped = await readLine(ctx.stdin);
    if (!piped) throw new UsageError('no password: pipe it in, or use --password-stdin or DVIC_PASSWORD');
    return piped;
  }
  ctx.stderr.write(question);
  ctx.stdin.setRawMode(true);
  return new Promise((resolve, reject) => {
    let password = '';
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') {
          done();
          return resolve(password);
        }
        if (char === '\u0003') {
          done();
          return reject(new CliError('cancelled'));
        }
        password = char === '\u007f' ? password.slice(0, -1) : password + char;
      }
    };
    const done = () => {
      ctx.stdin.setRawMode!(false);
      ctx.stdin.removeListener('data', onData);
      ctx.stdin.pause();
      ctx.stderr.write('\n');
    };
    ctx.stdin.on('data', onData);
    ctx.stdin.resume();
  });
}
