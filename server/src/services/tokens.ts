import crypto from 'node:crypto';

/** Random bearer secret (session cookie or API token); only its hash is ever stored. */
export function newSecret(prefix = ''): string {
  return prefix + crypto.randomBytes(32).toString('base64url');
}

export function sha256Hex(secret: string): string {
  return crypto.createHash('sha256').update(secret).digest('hex');
}

export const API_TOKEN_PREFIX = 'dvic_';
