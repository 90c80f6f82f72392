import fp from 'fastify-plugin';
import { NodeRegistry } from '../live/node-registry.js';
import { NodesRepository } from '../repositories/nodes-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    nodeRegistry: NodeRegistry;
  }
}

/** The live state of every node (memory, flushed to the database). */
export const nodesPlugin = fp(async (app) => {
  const registry = new NodeRegistry(new NodesRepository(app.db), app.demoRegistry, app.config.flushIntervalMs, app.log.child({ component: 'nodes' }));
  registry.start();
  app.decorate('nodeRegistry', registry);
  app.addHook('onClose', async () => registry.stop());
}, { name: 'nodes', dependencies: ['db', 'demos'] });
