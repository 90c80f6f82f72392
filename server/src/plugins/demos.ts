import fp from 'fastify-plugin';
import { DemoRegistry } from '../live/demo-registry.js';
import { DemosRepository } from '../repositories/demos-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    demoRegistry: DemoRegistry;
  }
}

/** The demo process table of every node, in memory and written through. */
export const demosPlugin = fp(async (app) => {
  app.decorate('demoRegistry', new DemoRegistry(new DemosRepository(app.db)));
}, { name: 'demos', dependencies: ['db'] });
