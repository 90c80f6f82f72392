import fp from 'fastify-plugin';
import { DeviceRegistry } from '../live/device-registry.js';
import { DevicesRepository } from '../repositories/devices-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    deviceRegistry: DeviceRegistry;
  }
}

/** Keepalive devices: their state machine in memory, pings written in batches (docs/devices.md). */
export const devicesPlugin = fp(async (app) => {
  // Replicas of a lab on one PostgreSQL database: other processes make devices and tokens.
  const shared = Boolean(app.config.natsUrl && app.config.databaseUrl);
  const registry = await new DeviceRegistry(new DevicesRepository(app.sql), app.deferredWrites, {
    flushMs: 50, tickMs: 250, seenMs: 1000, keepPings: 1000, maxPending: 200_000,
    maxPendingBytes: 64 * 1024 * 1024, maxPendingTransitions: 20_000,
  }).load({ sharedDatabase: shared });
  app.storage.on('changed', ({ state }) => { if (state === 'ok' || state === 'low') void registry.flush(); });
  registry.start();
  app.decorate('deviceRegistry', registry);
  app.addHook('onClose', async () => registry.stop());
}, { name: 'devices', dependencies: ['db', 'storage'] });
