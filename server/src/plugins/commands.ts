import fp from 'fastify-plugin';
import { CommandsRepository } from '../repositories/commands-repository.js';
import { CommandService } from '../services/command-service.js';
import { nodeLinkOf } from './node-link.js';
import { workOwnerOf } from './work-owner.js';

declare module 'fastify' {
  interface FastifyInstance {
    commands: CommandService;
  }
}

/** Commands run on nodes: sent through the hub, results and output from its events. */
export const commandsPlugin = fp(async (app) => {
  const { config } = app;
  const owner = workOwnerOf(app);
  const commands = new CommandService(new CommandsRepository(app.sql, owner.replica), nodeLinkOf(app), app.nodeRegistry, {
    maxOutputBytes: config.execOutputMaxBytes, defaultTimeoutS: config.execDefaultTimeoutS, maxTimeoutS: config.execMaxTimeoutS,
  }, app.log.child({ component: 'commands' }), app.deferredWrites);
  await commands.resume(owner.recoverOnly);
  app.decorate('commands', commands);
}, { name: 'commands', dependencies: ['db', 'agent-hub', 'nodes', 'storage'] });
