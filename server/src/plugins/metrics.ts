import path from 'node:path';
import fp from 'fastify-plugin';
import { MetricIngest } from '../metrics/metric-ingest.js';
import { defaultTiers, type MetricStore } from '../metrics/metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../metrics/sqlite-metric-store.js';
import { passingStoreFailure } from '../services/store-failure.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Metric history: raw samples and minute/hour rollups within DVIC_METRICS_MAX_MB (metrics/). */
    metricStore: MetricStore;
  }
}

const RETENTION_INTERVAL_MS = 60_000;

/**
 * Every hardware sample of every node into the metric store, written every flush interval,
 * retention and the disk budget applied every minute. A disk too full to open the file: the
 * history lives in memory until the next start (said in the log).
 */
export const metricsPlugin = fp(async (app) => {
  const { config } = app;
  const tiers = defaultTiers(config.metricsMaxBytes);
  const log = app.log.child({ component: 'metrics' });
  let store: SqliteMetricStore;
  try {
    store = new SqliteMetricStore(path.join(config.dataDir, METRICS_FILE), tiers, config.metricsMaxBytes);
  } catch (err) {
    if (!passingStoreFailure(err)) throw err;
    log.warn({ err }, 'cannot open the metric history file (full disk?): keeping metric history in memory until the next start');
    store = new SqliteMetricStore(':memory:', tiers, config.metricsMaxBytes);
  }
  const ingest = new MetricIngest(store, app.demoRegistry);
  app.nodeRegistry.on('hardware', ({ node_id, at, hardware }) => ingest.hardware(node_id, at, hardware));
  app.deviceRegistry.on('numbers', ({ device_id, at, numbers }) => ingest.deviceNumbers(device_id, at, numbers));
  const guarded = (what: string, work: () => void) => () => {
    try {
      work();
    } catch (err) {
      log.warn({ err }, `metric history: ${what} failed`);
    }
  };
  // A device removed, a node revoked: their history goes with them (docs/metrics.md).
  app.deviceRegistry.on('removed', (id) => guarded('removing a device', () => ingest.forgetDevice(id))());
  app.nodeRegistry.on('status', ({ node_id, status }) => { if (status === 'revoked') guarded('removing a node', () => ingest.forgetNode(node_id))(); });
  const flush = setInterval(guarded('flush', () => store.flush()), config.flushIntervalMs).unref();
  const retention = setInterval(guarded('retention', () => store.enforceRetention(Date.now())), RETENTION_INTERVAL_MS).unref();
  app.decorate('metricStore', store);
  app.addHook('onClose', async () => {
    clearInterval(flush);
    clearInterval(retention);
    store.close();
  });
}, { name: 'metrics', dependencies: ['db', 'nodes', 'demos', 'devices'] });
