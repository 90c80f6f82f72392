import path from 'node:path';
import fp from 'fastify-plugin';
import fs from 'node:fs';
import { defaultAgentPath } from '../local-agent/local-agent.js';
import { AgentUpdatesRepository } from '../repositories/agent-updates-repository.js';
import { readAgentRelease, type AgentRelease } from '../services/agent-release.js';
import { AgentUpdateService } from '../services/agent-updates.js';
import { loadUpdateKey, UPDATE_KEY_FILE } from '../services/update-key.js';
import { nodeLinkOf } from './node-link.js';
import { workOwnerOf } from './work-owner.js';

declare module 'fastify' {
  interface FastifyInstance {
    agentUpdates: AgentUpdateService;
    agentRelease: () => AgentRelease;
  }
}

/**
 * Agent self-update: the shipped agent file (re-read when it changes on disk), the update-signing
 * key in the data dir (its public half goes to agents in the welcome), and the rollouts.
 */
export const agentUpdatesPlugin = fp(async (app) => {
  const { config } = app;
  const file = config.agentFile ?? defaultAgentPath();
  let loaded = { release: readAgentRelease(file), mtime: safeMtime(file) };
  const current = (): AgentRelease => {
    const mtime = safeMtime(file);
    if (mtime && mtime !== loaded.mtime) {
      try {
        loaded = { release: readAgentRelease(file), mtime };
      } catch (err) {
        app.log.warn({ err, file }, 'the agent file changed but cannot be read: still shipping the previous one');
      }
    }
    return loaded.release;
  };
  const key = loadUpdateKey(config.updateKeyFile ?? path.join(config.dataDir, UPDATE_KEY_FILE));
  app.agentHub.updateKeyPem = key.publicKeyPem;
  app.decorate('agentRelease', current);
  const owner = workOwnerOf(app);
  const agentUpdates = new AgentUpdateService(
    new AgentUpdatesRepository(app.sql, owner.replica), nodeLinkOf(app), app.nodeRegistry, (targets) => app.commands.resolveTargets(targets), current, key,
    { nodeTimeoutMs: config.updateNodeTimeoutMs, defaultMaxParallel: 5 }, app.log.child({ component: 'agent-updates' }), app.deferredWrites,
  );
  await agentUpdates.endInterrupted(owner.recoverOnly);
  app.decorate('agentUpdates', agentUpdates);
  app.addHook('preClose', async () => app.agentUpdates.stop());
  app.log.info({ version: loaded.release.version, sha256: loaded.release.sha256, file }, 'shipping agent');
}, { name: 'agent-updates', dependencies: ['db', 'agent-hub', 'nodes', 'commands', 'storage'] });

function safeMtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
