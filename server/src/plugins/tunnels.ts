import fp from 'fastify-plugin';
import { TunnelService } from '../services/tunnel-service.js';
import { nodeLinkOf } from './node-link.js';

declare module 'fastify' {
  interface FastifyInstance {
    tunnels: TunnelService;
  }
}

/** TCP tunnels opened by a node's agent for the server (SSH onboarding through a source node). */
export const tunnelsPlugin = fp(async (app) => {
  const tunnels = new TunnelService(nodeLinkOf(app), app.log.child({ component: 'tunnels' }));
  app.decorate('tunnels', tunnels);
  app.addHook('preClose', async () => tunnels.stop());
}, { name: 'tunnels', dependencies: ['agent-hub'] });
