import type { FastifyInstance } from 'fastify';
import { errors } from '../schemas/common.js';

/**
 * Every route that writes may answer 507 (the server's disk is full: storage_full) or 503 (the
 * database is busy: storage_failed), with Retry-After (errors.ts). Added to each such route's
 * response schema here, so the OpenAPI document says so without every route repeating it.
 */
export function documentStorageErrors(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    const response = route.schema?.response as Record<string, unknown> | undefined;
    if (!response || methods.every((m) => m === 'GET' || m === 'HEAD')) return;
    route.schema!.response = { ...response, ...errors(503, 507) };
  });
}
