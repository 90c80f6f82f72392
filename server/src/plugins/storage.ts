import fp from 'fastify-plugin';
import { DeferredWrites } from '../services/deferred-writes.js';
import { defaultFdReserve, DescriptorBudget, readFdLimits } from '../services/descriptor-budget.js';
import { StorageMonitor } from '../services/storage-monitor.js';

declare module 'fastify' {
  interface FastifyInstance {
    storage: StorageMonitor;
    /** Writes that wait in memory while the disk refuses them (services/deferred-writes.ts). */
    deferredWrites: DeferredWrites;
    /** Descriptors kept free for the API and the database (services/descriptor-budget.ts). */
    descriptors: DescriptorBudget;
  }
}

/**
 * The server's own resources: the data directory's disk (free-space floor, store size, writes that
 * wait for room) and its file descriptors. Both recover by themselves.
 */
export const storagePlugin = fp(async (app) => {
  const { config, store } = app;
  const storage = new StorageMonitor(config.dataDir, {
    minFreeBytes: config.minFreeBytes, maxBytes: config.logRetentionBytes, checkIntervalMs: config.storageCheckIntervalMs,
  });
  const deferred = new DeferredWrites((failure) => storage.writeFailed(failure), app.log.child({ component: 'deferred-writes' }));
  storage.on('changed', ({ state }) => {
    if (state !== 'ok' && state !== 'low') return;
    store.recover();
    void deferred.retry();
  });
  const fdLimit = readFdLimits()?.soft ?? Number.POSITIVE_INFINITY;
  app.decorate('storage', storage);
  app.decorate('deferredWrites', deferred);
  app.decorate('descriptors', new DescriptorBudget(fdLimit, config.fdReserve ?? defaultFdReserve(fdLimit)));
  storage.start();
  deferred.start(config.storageCheckIntervalMs);
  app.addHook('onClose', async () => {
    storage.stop();
    await deferred.stop();
  });
}, { name: 'storage', dependencies: ['db'] });
