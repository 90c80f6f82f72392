import fp from 'fastify-plugin';
import { DemoRegistry } from '../live/demo-registry.js';
import { DemosRepository } from '../repositories/demos-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    demoRegistry: DemoRegistry;
  }
}

/** The demo process table of every node, in memory and written through (or later, on a full disk). */
export const demosPlugin = fp(async (app) => {
  app.decorate('demoRegistry', await new DemoRegistry(new DemosRepository(app.sql), app.deferredWrites).load());
}, { name: 'demos', dependencies: ['db', 'storage'] });
