import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fp from 'fastify-plugin';
import { defaultAgentPath } from '../local-agent/local-agent.js';
import { EnrollmentsRepository, EnrollmentTokensRepository } from '../repositories/enrollments-repository.js';
import { EnrollmentService } from '../services/enrollment-service.js';
import { InstallLinks } from '../services/install-links.js';
import { nodeLinkOf } from './node-link.js';
import { workOwnerOf } from './work-owner.js';

declare module 'fastify' {
  interface FastifyInstance {
    enrollments: EnrollmentService;
    installLinks: InstallLinks;
  }
}

/** agent/install.sh of this checkout, next to the agent file. */
export function installScriptPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../agent/install.sh');
}

/** Adding machines over SSH (through a source node's tunnel or directly). */
export const enrollmentsPlugin = fp(async (app) => {
  const owner = workOwnerOf(app);
  const enrollments = new EnrollmentService(
    new EnrollmentsRepository(app.sql, owner.replica), app.nodeRegistry, nodeLinkOf(app), app.tunnels,
    { agentPath: defaultAgentPath(), installScriptPath: installScriptPath() }, app.log.child({ component: 'enrollments' }),
  );
  await enrollments.failInterrupted(owner.recoverOnly);
  app.decorate('enrollments', enrollments);
  app.decorate('installLinks', new InstallLinks(new EnrollmentTokensRepository(app.sql), app.nodeRegistry));
}, { name: 'enrollments', dependencies: ['db', 'nodes', 'agent-hub', 'tunnels'] });
