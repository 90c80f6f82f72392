import { call, type DvicApi, type Schemas } from '@dvic/client';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { renderTable } from '../format/table.js';
import { timestamp } from '../format/timestamp.js';
import { prompt } from './login.js';

type User = Schemas['User'];
type Role = User['role'];
const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

const USAGE = `usage: dvic users <list|add|role|disable|enable|remove|reset-password> ...

  dvic users list
  dvic users add <name> --role viewer|operator|admin     (password: prompt, or the first line of stdin)
  dvic users role <name> <viewer|operator|admin>
  dvic users disable <name>          (their sessions and tokens end at once)
  dvic users enable <name>
  dvic users remove <name>
  dvic users reset-password <name>   (new password: prompt, or the first line of stdin)

Admins only. Passwords are never read from the command line.`;

const PASSWD_USAGE = `usage: dvic passwd

Changes your own password: asks for the current one, then the new one (twice on a terminal);
piped, the first line of stdin is the current password and the second the new one.
Your other sessions end.`;

/** The typed API client of the stored login (its errors are turned into one line by main). */
const api = (ctx: Context): DvicApi => connection(ctx).api;

/** Passwords, never from argv: a prompt without echo on a terminal, else lines of stdin. */
async function readPasswords(ctx: Context, questions: string[]): Promise<string[]> {
  if (ctx.stdin.isTTY && ctx.stdin.setRawMode) {
    const answers: string[] = [];
    for (const question of questions) answers.push(await prompt(ctx, question));
    return answers;
  }
  const lines = (await readAll(ctx.stdin)).split('\n').map((l) => l.replace(/\r$/, ''));
  const answers = questions.map((_, i) => lines[i] ?? '');
  if (answers.some((a) => !a)) throw new UsageError(`expected ${questions.length === 1 ? 'the password' : `${questions.length} passwords`} on stdin, one per line`);
  return answers;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => { data += chunk; });
    stream.on('end', () => resolve(data));
    stream.on('error', reject);
  });
}

async function newPassword(ctx: Context, whose: string): Promise<string> {
  if (!ctx.stdin.isTTY) return (await readPasswords(ctx, [`New password for ${whose}: `]))[0]!;
  const [first, again] = await readPasswords(ctx, [`New password for ${whose}: `, 'Again: ']);
  if (first !== again) throw new CliError('the two passwords differ: nothing changed');
  return first!;
}

function role(value: string | undefined): Role {
  if (!ROLES.includes(value as Role)) throw new UsageError(`role must be one of ${ROLES.join(', ')}`);
  return value as Role;
}

async function findUser(client: DvicApi, name: string): Promise<User> {
  const { users } = await call(client.GET('/api/v1/users'));
  const user = users.find((u) => u.username === name);
  if (!user) throw new CliError(`no user named ${name}`);
  return user;
}

function describeUser(user: User): string {
  return `${user.username} (${user.role}${user.disabled ? ', disabled' : ''})`;
}

export async function users(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { role: { type: 'string', short: 'r' } }, USAGE);
  const [action, name, extra] = positionals;
  if (values.help) return print(ctx, USAGE), 0;
  if (!action) throw new UsageError(USAGE);
  const client = api(ctx);
  const needName = () => {
    if (!name) throw new UsageError(`dvic users ${action} needs a user name`);
    return name;
  };
  switch (action) {
    case 'list': {
      const list = (await call(client.GET('/api/v1/users'))).users;
      print(ctx, renderTable(['USER', 'ROLE', 'STATE', 'LAST SIGN-IN', 'CREATED'], list.map((u) => [
        u.username, u.role, u.disabled ? { text: 'disabled', color: 'red' } : 'enabled',
        u.last_login_at === null ? 'never' : timestamp(u.last_login_at), timestamp(u.created_at),
      ]), ctx.color));
      return 0;
    }
    case 'add': {
      const username = needName();
      const chosen = role(values.role as string | undefined);
      const password = await newPassword(ctx, username);
      const { user } = await call(client.POST('/api/v1/users', { body: { username, password, role: chosen } }));
      print(ctx, `Added ${describeUser(user)}`);
      return 0;
    }
    case 'role': {
      const user = await findUser(client, needName());
      const updated = (await call(client.PATCH('/api/v1/users/{id}', { params: { path: { id: user.id } }, body: { role: role(extra) } }))).user;
      print(ctx, `${describeUser(updated)}: role changed, their open sockets closed`);
      return 0;
    }
    case 'disable':
    case 'enable': {
      const user = await findUser(client, needName());
      const updated = (await call(client.PATCH('/api/v1/users/{id}', { params: { path: { id: user.id } }, body: { disabled: action === 'disable' } }))).user;
      print(ctx, action === 'disable' ? `Disabled ${updated.username}: their sessions and tokens ended` : `Enabled ${updated.username}`);
      return 0;
    }
    case 'remove': {
      const user = await findUser(client, needName());
      await call(client.DELETE('/api/v1/users/{id}', { params: { path: { id: user.id } }, body: {} }));
      print(ctx, `Removed ${user.username}`);
      return 0;
    }
    case 'reset-password': {
      const user = await findUser(client, needName());
      const password = await newPassword(ctx, user.username);
      await call(client.POST('/api/v1/users/{id}/password', { params: { path: { id: user.id } }, body: { password } }));
      print(ctx, `New password set for ${user.username}: their sessions ended`);
      return 0;
    }
    default:
      throw new UsageError(`unknown action "${action}"\n${USAGE}`);
  }
}

export async function passwd(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, {}, PASSWD_USAGE);
  if (values.help) return print(ctx, PASSWD_USAGE), 0;
  if (positionals.length) throw new UsageError(PASSWD_USAGE);
  const client = api(ctx);
  const [current, next, again] = ctx.stdin.isTTY
    ? await readPasswords(ctx, ['Current password: ', 'New password: ', 'Again: '])
    : [...await readPasswords(ctx, ['current', 'new']), undefined];
  if (again !== undefined && again !== next) throw new CliError('the two new passwords differ: nothing changed');
  const { user } = await call(client.POST('/api/v1/auth/password', { body: { current_password: current!, new_password: next! } }));
  print(ctx, `Password changed for ${user.username}; your other sessions ended`);
  return 0;
}
