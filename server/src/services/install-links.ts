import crypto from 'node:crypto';
import { ErrorCode, type AgentConfigFile, type EnrollmentTokenView } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { EnrollmentTokensRepository } from '../repositories/enrollments-repository.js';
import { enrollNode, type ServerIdentity } from './enrollment.js';
import { newSecret, sha256Hex } from './tokens.js';

const TOKEN_PREFIX = 'dvin_';

/** The one-line commands of an install link (curl, and wget where there is no curl). */
export function installCommands(baseUrl: string, token: string): { command: string; wget_command: string } {
  const script = `${baseUrl.replace(/\/+$/, '')}/install.sh`;
  return {
    command: `curl -fsSL ${script} | sudo sh -s -- --token ${token}`,
    wget_command: `wget -qO- ${script} | sudo sh -s -- --token ${token}`,
  };
}

/** install.sh as served: the same script with this server's base URL filled in. */
export function renderInstallScript(script: string, baseUrl: string): string {
  if (!/^https?:\/\/[A-Za-z0-9._:[\]-]+(\/[A-Za-z0-9._~/-]*)?$/.test(baseUrl)) throw new ApiError(400, ErrorCode.badRequest, 'this server URL cannot go into a shell script');
  return script.replace(/^DVIC_SERVER=""$/m, `DVIC_SERVER="${baseUrl.replace(/\/+$/, '')}"`);
}

/**
 * Install links: a token an admin hands out (expiry, number of uses, labels), exchanged by
 * install.sh for a node identity, once per use. Only the token's hash is stored.
 */
export class InstallLinks {
  constructor(private readonly tokens: EnrollmentTokensRepository, private readonly registry: NodeRegistry) {}

  async create(input: { labels: Record<string, string>; maxUses: number; expiresInS: number }): Promise<{ token: EnrollmentTokenView; secret: string }> {
    const secret = newSecret(TOKEN_PREFIX);
    const token = await this.tokens.create(crypto.randomUUID(), sha256Hex(secret), { labels: input.labels, maxUses: input.maxUses, expiresAt: Date.now() + input.expiresInS * 1000 });
    return { token, secret };
  }

  /** One use of a token: a new node named after the machine (made unique), and its agent config. */
  async exchange(secret: string, hostname: string, server: ServerIdentity): Promise<{ config: AgentConfigFile }> {
    const token = await this.tokens.byHash(sha256Hex(secret));
    if (!token) throw new ApiError(401, ErrorCode.unauthorized, 'unknown install token: ask for a new install link');
    if (token.expires_at <= Date.now()) {
      throw new ApiError(403, ErrorCode.forbidden, `this install token expired at ${new Date(token.expires_at).toISOString()}: ask for a new install link`);
    }
    if (!(await this.tokens.use(token.id))) throw new ApiError(403, ErrorCode.forbidden, `this install token is used up (${token.max_uses} of ${token.max_uses} uses): ask for a new install link`);
    const { config } = await enrollNode(this.registry, { name: this.freeName(hostname), labels: token.labels }, server);
    return { config };
  }

  private freeName(hostname: string): string {
    const base = hostname.replace(/[^A-Za-z0-9_.-]/g, '').replace(/^[^A-Za-z0-9]+/, '').slice(0, 56) || 'node';
    const taken = new Set(this.registry.list().map((n) => n.name));
    if (!taken.has(base)) return base;
    for (;;) {
      const name = `${base}-${crypto.randomBytes(3).toString('hex')}`;
      if (!taken.has(name)) return name;
    }
  }
}
