import fp from 'fastify-plugin';
import { DemoCatalog } from '../live/demo-catalog.js';
import { DemoEntitiesRepository } from '../repositories/demo-entities-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    demoCatalog: DemoCatalog;
  }
}

/** Demos as (node, name) with their runs, expected demos and schedules (GET /api/v1/demos). */
export const demoCatalogPlugin = fp(async (app) => {
  const catalog = await new DemoCatalog(app.demoRegistry, app.nodeRegistry, new DemoEntitiesRepository(app.sql), app.config.demoPolicy, app.deferredWrites).load();
  catalog.start();
  app.decorate('demoCatalog', catalog);
  app.addHook('onClose', async () => catalog.stop());
}, { name: 'demo-catalog', dependencies: ['db', 'demos', 'nodes', 'storage'] });
