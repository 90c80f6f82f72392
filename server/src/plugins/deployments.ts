import fp from 'fastify-plugin';
import { ArtifactsRepository } from '../repositories/artifacts-repository.js';
import { DeploymentsRepository } from '../repositories/deployments-repository.js';
import { ArtifactStore } from '../services/artifact-store.js';
import { ArtifactTransfers } from '../services/artifact-transfers.js';
import { DeploymentService } from '../services/deployment-service.js';
import { NodeDeploys } from '../services/node-deploys.js';
import { nodeLinkOf } from './node-link.js';
import { workOwnerOf } from './work-owner.js';

declare module 'fastify' {
  interface FastifyInstance {
    artifacts: ArtifactStore;
    deployments: DeploymentService;
  }
}

/** Artifacts in the data dir, served to agents over their own connection, and deployments to nodes. */
export const deploymentsPlugin = fp(async (app) => {
  const { config } = app;
  const store = new ArtifactStore(config.dataDir, new ArtifactsRepository(app.sql), {
    maxBytes: config.artifactMaxBytes, maxTotalBytes: config.artifactsMaxTotalBytes,
  });
  const log = app.log.child({ component: 'deployments' });
  const link = nodeLinkOf(app);
  const nodeDeploys = new NodeDeploys(link, new ArtifactTransfers(link, log), config.deployReconnectWaitMs);
  app.decorate('artifacts', store);
  const owner = workOwnerOf(app);
  const deployments = new DeploymentService(new DeploymentsRepository(app.sql, owner.replica), store, nodeDeploys, app.nodeRegistry,
    (targets) => app.commands.resolveTargets(targets), config.deployMaxParallel, log, app.deferredWrites);
  await deployments.endInterrupted(owner.recoverOnly);
  app.decorate('deployments', deployments);
}, { name: 'deployments', dependencies: ['db', 'storage', 'agent-hub', 'nodes', 'commands'] });
