import fp from 'fastify-plugin';
import { AuditRepository } from '../repositories/audit-repository.js';
import { AuditTrail } from '../services/audit-trail.js';

declare module 'fastify' {
  interface FastifyInstance {
    auditTrail: AuditTrail;
    auditLog: AuditRepository;
  }
}

/** The append-only audit trail: who did what, where, when, from which address. */
export const auditPlugin = fp(async (app) => {
  const repository = new AuditRepository(app.sql, app.deferredWrites);
  const trail = new AuditTrail(repository, app.log.child({ component: 'audit' }));
  app.decorate('auditLog', repository);
  app.decorate('auditTrail', trail);
  app.addHook('onClose', async () => trail.stop());
}, { name: 'audit', dependencies: ['db', 'storage'] });
