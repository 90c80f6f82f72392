import fp from 'fastify-plugin';
import { TerminalRelay } from '../services/terminal-relay.js';
import { nodeLinkOf } from './node-link.js';

declare module 'fastify' {
  interface FastifyInstance {
    terminals: TerminalRelay;
  }
}

/** PTY sessions relayed between a viewer's socket and a node's agent. */
export const terminalsPlugin = fp(async (app) => {
  const terminals = new TerminalRelay(nodeLinkOf(app), app.nodeRegistry, app.auditTrail, app.config.terminalIdleMs, app.log.child({ component: 'terminals' }));
  app.decorate('terminals', terminals);
  app.addHook('preClose', async () => terminals.stop());
}, { name: 'terminals', dependencies: ['agent-hub', 'nodes', 'audit'] });
