import fp from 'fastify-plugin';
import { ProtocolValidator } from '@dvic/protocol';
import { AgentHub } from '../hub/agent-hub.js';

declare module 'fastify' {
  interface FastifyInstance {
    agentHub: AgentHub;
    protocolValidator: ProtocolValidator;
  }
}

/** One authenticated WebSocket per node agent; stops (nodes marked offline) before the stores close. */
export const agentHubPlugin = fp(async (app) => {
  const validator = new ProtocolValidator();
  const hub = new AgentHub(
    { registry: app.nodeRegistry, demos: app.demoRegistry, logWriter: app.logWriter },
    app.config, validator, app.log.child({ component: 'agent-hub' }),
  );
  hub.start();
  app.decorate('protocolValidator', validator);
  app.decorate('agentHub', hub);
  app.addHook('preClose', async () => hub.stop());
}, { name: 'agent-hub', dependencies: ['nodes', 'demos', 'logs'] });
