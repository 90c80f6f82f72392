import fp from 'fastify-plugin';
import { StorageMonitor } from '../services/storage-monitor.js';

declare module 'fastify' {
  interface FastifyInstance {
    storage: StorageMonitor;
  }
}

/** Watches the data directory's disk (free space floor, store size) and says when it is full. */
export const storagePlugin = fp(async (app) => {
  const { config } = app;
  const storage = new StorageMonitor(config.dataDir, { minFreeBytes: config.minFreeBytes, maxBytes: config.logRetentionBytes, checkIntervalMs: 5000 });
  storage.start();
  app.decorate('storage', storage);
  app.addHook('onClose', async () => storage.stop());
}, { name: 'storage', dependencies: ['db'] });
