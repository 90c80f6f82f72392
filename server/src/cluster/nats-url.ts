import type { ConnectionOptions } from 'nats';

/**
 * The connect options of DVIC_NATS_URL: one URL or several, comma-separated (a NATS cluster).
 * nats.js ignores credentials inside a server URL, so they are taken out here: `user:password@`
 * becomes user/pass, a lone `token@` a token (the NATS convention). A `tls://` URL requires TLS.
 * The URL itself is never logged (it may hold a password).
 */
export function natsConnectOptions(raw: string): Pick<ConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'tls'> {
  const urls = raw.split(',').map((part) => new URL(part.trim()));
  const credentials = urls.find((url) => url.username || url.password);
  const options: ReturnType<typeof natsConnectOptions> = { servers: urls.map((url) => `${url.protocol}//${url.host}`) };
  if (credentials?.password) Object.assign(options, { user: decodeURIComponent(credentials.username), pass: decodeURIComponent(credentials.password) });
  else if (credentials) options.token = decodeURIComponent(credentials.username);
  if (urls.some((url) => url.protocol === 'tls:')) options.tls = {};
  return options;
}
