import { ErrorCode, type Channel, type ChannelEmail } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { ChannelInput } from './alert-config.js';

/** What a client sends to add or change a channel (API names). */
export interface ChannelBody {
  type?: ChannelRecord['type'];
  name?: string;
  url?: string | null;
  secret?: string | null;
  chat_id?: string | null;
  email?: ChannelEmail | null;
  enabled?: boolean;
}

const bad = (message: string) => new ApiError(400, ErrorCode.badRequest, message);

function checkUrl(url: string | null, type: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url ?? '');
  } catch {
    throw bad(`a ${type} channel needs a url (http or https)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw bad(`a ${type} channel's url must be http or https, not ${parsed.protocol}`);
  if (parsed.username || parsed.password) throw bad('put credentials in the secret, not in the url');
}

/** Refuses a channel that could never deliver (each type's required settings). */
export function checkChannel(c: ChannelInput): void {
  if (c.type === 'email') {
    if (!c.email) throw bad('an email channel needs its SMTP settings (email)');
    if (!c.email.to.length) throw bad('an email channel needs at least one recipient (email.to)');
    return;
  }
  if (c.type === 'telegram') {
    if (!c.secret || !/^\d+:[\w-]+$/.test(c.secret)) throw bad('a telegram channel needs the bot token (secret, "123456:ABC...")');
    if (!c.chatId) throw bad('a telegram channel needs the chat_id to write to');
    if (c.url !== null) checkUrl(c.url, c.type);
    return;
  }
  checkUrl(c.url, c.type);
  if (c.type === 'ntfy' && new URL(c.url!).pathname.split('/').filter(Boolean).length === 0) throw bad('an ntfy channel url names its topic (https://ntfy.sh/<topic>)');
}

/** A new channel from the body (defaults: enabled; no secret). */
export function channelInput(body: ChannelBody & Pick<Channel, 'type' | 'name'>): ChannelInput {
  const input: ChannelInput = {
    type: body.type, name: body.name, url: body.url ?? null, secret: body.secret ?? null, chatId: body.chat_id ?? null,
    email: body.email ?? null, enabled: body.enabled ?? true,
  };
  checkChannel(input);
  return input;
}

/** Where a channel's secret goes: a new one must not inherit the stored secret. */
const destination = (c: Pick<ChannelInput, 'url' | 'email'>): string => JSON.stringify([c.url, c.email?.host ?? null, c.email?.port ?? null]);

/**
 * The change a PATCH body makes (absent fields stay). A new destination (url, email host or port) drops the
 * stored secret unless the body sends one: else an admin who does not know the bot token or SMTP password
 * could redirect it to a server of their own.
 */
export function channelChange(before: ChannelRecord, body: ChannelBody): ChannelInput {
  const next: ChannelInput = {
    type: before.type, name: body.name ?? before.name, url: body.url === undefined ? before.url : body.url,
    secret: body.secret === undefined ? before.secret : body.secret, chatId: body.chat_id === undefined ? before.chatId : body.chat_id,
    email: body.email === undefined ? before.email : body.email, enabled: body.enabled ?? before.enabled,
  };
  if (body.secret === undefined && destination(next) !== destination(before)) next.secret = null;
  checkChannel(next);
  return next;
}
