import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { errors } from '../../../schemas/common.js';
import { Labels } from '../../../schemas/node.js';
import { AgentConfigFileRef, EnrollmentTokenRef } from '../../../schemas/protocol-schemas.js';
import { agentUrl, type ServerIdentity } from '../../../services/enrollment.js';
import { installCommands } from '../../../services/install-links.js';

/** This server's base URL as the caller reached it, unless DVIC_PUBLIC_URL says otherwise. */
export function publicBaseUrl(request: FastifyRequest, publicUrl: string | undefined): string {
  return publicUrl ?? `${request.protocol}://${request.host}`;
}

/**
 * How a new agent reaches this server (and the lab's other replicas), and the certificate it pins
 * when this server serves TLS itself; behind a TLS proxy it checks the proxy's against its CAs.
 */
export function serverIdentity(app: FastifyInstance, request: FastifyRequest): ServerIdentity {
  const serverUrl = agentUrl(publicBaseUrl(request, app.config.publicUrl));
  const tlsCertSha256 = app.tlsCertSha256 && serverUrl.startsWith('wss://') ? app.tlsCertSha256 : undefined;
  return { agentUrl: serverUrl, replicaAgentUrls: app.config.replicaUrls.map(agentUrl), tlsCertSha256, metricsIntervalS: app.config.metricsIntervalS };
}

/** Install links: POST /enrollment-tokens (admin). */
export const enrollmentTokensRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/enrollment-tokens', {
    config: { role: 'admin', audit: 'enrollment-token.create' },
    schema: {
      tags: ['enrollments'], summary: 'An install link: a token and the one-line command that installs a node with it',
      description: 'Run `command` (or `wget_command`) as root on the machine: install.sh exchanges the token for a node identity. The token is shown once; expired or used-up tokens are refused.',
      body: Type.Object({
        expires_in_s: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 86400, description: 'Lifetime in seconds (default one day)' })),
        max_uses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'How many machines may use it (default 1)' })),
        labels: Type.Optional(Labels),
      }, { additionalProperties: false }),
      response: {
        201: Type.Object({ token: EnrollmentTokenRef, secret: Type.String(), command: Type.String(), wget_command: Type.String() }),
        ...errors(400, 401, 403),
      },
    },
  }, async (request, reply) => {
    const { token, secret } = await app.installLinks.create({ labels: request.body.labels ?? {}, maxUses: request.body.max_uses ?? 1, expiresInS: request.body.expires_in_s ?? 86400 });
    reply.code(201);
    return { token, secret, ...installCommands(publicBaseUrl(request, app.config.publicUrl), secret) };
  });
};

/** What install.sh calls with its token (public: the token is the credential). */
export const enrollmentTokenExchangeRoute: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/enrollment-tokens/exchange', {
    config: { public: true, audit: 'enrollment-token.exchange' },
    schema: {
      tags: ['enrollments'], security: [], summary: "install.sh: one use of a token, for a new node's agent config (private key included, shown once)",
      body: Type.Object({
        token: Type.String({ minLength: 1, maxLength: 128 }),
        hostname: Type.String({ maxLength: 255, description: 'The machine\'s host name: the node is named after it' }),
      }, { additionalProperties: false }),
      response: { 201: AgentConfigFileRef, ...errors(400, 401, 403) },
    },
  }, async (request, reply) => {
    const { config } = await app.installLinks.exchange(request.body.token, request.body.hostname, serverIdentity(app, request));
    reply.code(201);
    return config;
  });
};
