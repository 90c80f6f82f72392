import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyServerOptions } from 'fastify';
import { MAX_FRAME_BYTES } from '@dvic/protocol';
import type { ServerConfig } from './config.js';
import { SERVER_VERSION } from './version.js';
import { errorHandler } from './errors.js';
import { registerDashboard } from './plugins/dashboard.js';
import { servicesPlugin } from './plugins/services.js';
import { documentStorageErrors } from './plugins/storage-errors.js';
import { apiV1 } from './routes/api/v1/index.js';
import { registerProtocolSchemas } from './schemas/protocol-schemas.js';


/** The whole HTTP server, without listening: tests drive it with inject() or listen on port 0. */
export async function buildApp(
  config: ServerConfig,
  logger: FastifyServerOptions['logger'] = { level: config.logLevel },
  options: { dashboardDir?: string } = {},
) {
  // Request lines would drown the useful events; failures are logged by the error handler.
  const app = Fastify({
    logger, bodyLimit: MAX_FRAME_BYTES, trustProxy: false, logController: new LogController({ disableRequestLogging: true }),
    // Refuse unknown fields where a schema forbids them, instead of silently dropping them.
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);

  await app.register(cookie);
  await app.register(swagger, {
    // Name shared schemas by their $id (Node, ErrorBody) instead of def-0, def-1.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'DVIC Demo Monitor API', version: SERVER_VERSION, description: 'REST API of the DVIC server. WebSockets: /api/v1/agent (node agents) and /api/v1/live (dashboards), see docs/protocol.md.' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'dvic_session' },
          bearer: { type: 'http', scheme: 'bearer', description: 'API token from POST /api/v1/tokens' },
        },
      },
      security: [{ session: [] }, { bearer: [] }],
    },
  });
  await app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
  await app.register(servicesPlugin, { config });
  registerProtocolSchemas(app);
  documentStorageErrors(app);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  await app.register(apiV1, { prefix: '/api/v1' });
  await registerDashboard(app, options.dashboardDir);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
