import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type http from 'node:http';
import Fastify, { LogController, type FastifyHttpOptions, type FastifyServerOptions } from 'fastify';
import { MAX_FRAME_BYTES } from '@dvic/protocol';
import type { ServerConfig } from './config.js';
import { errorHandler } from './errors.js';
import { agentHubPlugin } from './plugins/agent-hub.js';
import { alertsPlugin } from './plugins/alerts.js';
import { auditPlugin } from './plugins/audit.js';
import { clusterPlugin } from './plugins/cluster.js';
import { clusterStatePlugin } from './plugins/cluster-state.js';
import { authPlugin } from './plugins/auth.js';
import { commandsPlugin } from './plugins/commands.js';
import { agentUpdatesPlugin } from './plugins/agent-updates.js';
import { registerDashboard } from './plugins/dashboard.js';
import { dbPlugin } from './plugins/db.js';
import { enrollmentsPlugin } from './plugins/enrollments.js';
import { deploymentsPlugin } from './plugins/deployments.js';
import { demoCatalogPlugin } from './plugins/demo-catalog.js';
import { demosPlugin } from './plugins/demos.js';
import { devicesPlugin } from './plugins/devices.js';
import { liveHubPlugin } from './plugins/live-hub.js';
import { logsPlugin } from './plugins/logs.js';
import { metricsPlugin } from './plugins/metrics.js';
import { prometheusPlugin } from './plugins/prometheus.js';
import { nodesPlugin } from './plugins/nodes.js';
import { numberParamsPlugin } from './plugins/number-params.js';
import { routeGuardsPlugin } from './plugins/route-guards.js';
import { storagePlugin } from './plugins/storage.js';
import { terminalsPlugin } from './plugins/terminals.js';
import { tunnelsPlugin } from './plugins/tunnels.js';
import { webSecurityPlugin } from './plugins/web-security.js';
import { documentStorageErrors } from './plugins/storage-errors.js';
import { apiV1 } from './routes/api/v1/index.js';
import { devicePingRoutes } from './routes/device-pings.js';
import { installRoutes } from './routes/install.js';
import { lazySchemaCompilers } from './http/lazy-schema-compilers.js';
import { registerProtocolSchemas } from './schemas/protocol-schemas.js';
import { loadTls } from './services/tls.js';
import { SERVER_VERSION } from './version.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** SHA-256 of the certificate this server serves itself (DVIC_TLS_CERT), or null for plain http. */
    tlsCertSha256: string | null;
  }
}

/** The whole HTTP server, without listening: tests drive it with inject() or listen on port 0. */
export async function buildApp(
  config: ServerConfig,
  logger: FastifyServerOptions['logger'] = { level: config.logLevel },
  options: { dashboardDir?: string; eagerSchemas?: boolean } = {},
) {
  // Before any registry loads: a replica reads the other replicas' live events from here on.
  const building = new Date();
  // Request lines would drown the useful events; failures are logged by the error handler.
  const { trustProxy } = config;
  const tls = config.tlsCertFile && config.tlsKeyFile ? loadTls(config.tlsCertFile, config.tlsKeyFile) : null;
  const serverOptions: FastifyHttpOptions<http.Server> = {
    logger, bodyLimit: MAX_FRAME_BYTES, trustProxy: typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy, logController: new LogController({ disableRequestLogging: true }),
    // Refuse unknown fields where a schema forbids them, instead of silently dropping them; NaN and
    // Infinity are not numbers.
    ajv: { customOptions: { removeAdditional: false, strictNumbers: true } },
    // Each route's schemas compiled on first use (start-up time); tests build it eagerly once.
    ...(options.eagerSchemas ? {} : { schemaController: lazySchemaCompilers() }),
    // Fastify's default (100) answers a longer path parameter with its own 414 before any route
    // schema sees it; tokens and ids are checked by their routes (a 400/404 in the usual shape).
    routerOptions: { maxParamLength: 256 },
    // DVIC_TLS_CERT/DVIC_TLS_KEY: https and wss served directly (docs/deploy.md).
    // (typed as http: an https server's requests and replies are the same Node classes).
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
  };
  const app = Fastify(serverOptions).withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler(errorHandler);
  app.decorate('tlsCertSha256', tls?.certSha256 ?? null);

  await app.register(cookie);
  await app.register(swagger, {
    // Name shared schemas by their $id (Node, ErrorBody) instead of def-0, def-1.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'DVIC Demo Monitor API', version: SERVER_VERSION, description: 'REST API of the DVIC server. WebSockets: /api/v1/agent (node agents) and /api/v1/live (dashboards), see docs/protocol.md. x-role: the least role a route needs; x-audit: the audit action a change is recorded under.' },
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
  registerProtocolSchemas(app);
  documentStorageErrors(app);

  // The services, each a named plugin that declares what it needs (see CONTRIBUTING.md).
  await app.register(dbPlugin, { config });
  await app.register(storagePlugin);
  await app.register(auditPlugin);
  await app.register(authPlugin);
  await app.register(webSecurityPlugin);
  await app.register(routeGuardsPlugin);
  await app.register(numberParamsPlugin);
  await app.register(demosPlugin);
  await app.register(nodesPlugin);
  await app.register(devicesPlugin);
  await app.register(demoCatalogPlugin);
  await app.register(logsPlugin);
  await app.register(metricsPlugin);
  await app.register(agentHubPlugin);
  // A replica of a scaled-out lab (docs/scale-out.md): the services below reach every node through it.
  if (config.natsUrl) await app.register(clusterPlugin);
  await app.register(commandsPlugin);
  await app.register(agentUpdatesPlugin);
  await app.register(terminalsPlugin);
  await app.register(tunnelsPlugin);
  await app.register(enrollmentsPlugin);
  await app.register(deploymentsPlugin);
  await app.register(alertsPlugin);
  await app.register(liveHubPlugin);
  if (config.natsUrl) await app.register(clusterStatePlugin, { loadingSince: building });
  await app.register(prometheusPlugin);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  await app.register(apiV1, { prefix: '/api/v1' });
  await app.register(devicePingRoutes);
  await app.register(installRoutes);
  await registerDashboard(app, options.dashboardDir);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
