import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const notFound = (request: FastifyRequest, reply: FastifyReply) =>
  reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url}` } });

export function defaultDashboardDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dashboard/dist');
}

/**
 * Serves the built dashboard at / with a single-page-app fallback: any GET outside /api that is
 * not a file gets index.html, so deep links (/nodes/<id>) work on reload.
 */
export async function registerDashboard(app: FastifyInstance, dir = defaultDashboardDir()): Promise<void> {
  const index = path.join(dir, 'index.html');
  if (!fs.existsSync(index)) {
    app.log.warn({ dir }, 'dashboard not built: run npm run build');
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('text/html').send('<!doctype html><title>DVIC</title><p>The dashboard is not built. Run <code>npm run build</code>, then reload.</p>'));
    app.setNotFoundHandler(notFound);
    return;
  }
  await app.register(fastifyStatic, { root: dir, wildcard: false, index: 'index.html', maxAge: '1h', immutable: false });
  app.setNotFoundHandler((request, reply) => {
    if (request.method === 'GET' && !request.url.startsWith('/api/') && request.headers.accept?.includes('text/html')) {
      return reply.type('text/html').header('cache-control', 'no-cache').sendFile('index.html');
    }
    return notFound(request, reply);
  });
}
