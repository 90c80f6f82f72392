import fp from 'fastify-plugin';
import { prometheusRegistry } from '../services/prometheus-exposition.js';

/**
 * GET /metrics for Prometheus: an API token as `Authorization: Bearer` (or a session); a token
 * created with scope `metrics` may call this route and nothing else.
 */
export const prometheusPlugin = fp(async (app) => {
  const register = prometheusRegistry(app.nodeRegistry, app.demoRegistry, app.deviceRegistry, app.logWriter);
  app.get('/metrics', {
    onRequest: [app.authenticate, app.authorize],
    config: { scope: 'metrics' },
    schema: {
      tags: ['metrics'], summary: 'Prometheus exposition: every node\'s and demo\'s latest values and the server\'s process metrics',
      description: 'Names: docs/metrics.md. Scrape with an API token (POST /api/v1/tokens with scope "metrics") as bearer_token.',
      produces: ['text/plain'],
    },
  }, async (_request, reply) => {
    const text = await register.metrics();
    return reply.type(register.contentType).send(text);
  });
}, { name: 'prometheus', dependencies: ['auth', 'route-guards', 'nodes', 'demos', 'devices', 'logs'] });
