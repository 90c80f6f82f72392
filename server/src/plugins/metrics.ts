import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.js';
import { MetricIngest } from '../metrics/metric-ingest.js';
import { defaultTiers, type MetricStore } from '../metrics/metric-store.js';
import { PostgresMetricStore } from '../metrics/postgres-metric-store.js';
import { METRICS_FILE, SqliteMetricStore } from '../metrics/sqlite-metric-store.js';
import { passingStoreFailure } from '../services/store-failure.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Metric history: raw samples and minute/hour rollups within DVIC_METRICS_MAX_MB (metrics/). */
    metricStore: MetricStore;
    /** The minute's retention run: stopped on a replica that does not lead (cluster-state plugin). */
    metricRetention: { start(): void; stop(): void };
  }
}

const RETENTION_INTERVAL_MS = 60_000;

/**
 * Every hardware sample of every node into the metric store, written every flush interval,
 * retention and the disk budget applied every minute. With DVIC_DATABASE_URL the history lives in
 * PostgreSQL tables (postgres-metric-store.ts), else in its own SQLite file in the data dir. A disk
 * too full to open that file: the history lives in memory until the next start (said in the log).
 */
export const metricsPlugin = fp(async (app) => {
  const { config } = app;
  const log = app.log.child({ component: 'metrics' });
  const store = await openStore(config, log);
  const ingest = new MetricIngest(store, app.demoRegistry);
  app.nodeRegistry.on('hardware', ({ node_id, at, hardware }) => ingest.hardware(node_id, at, hardware));
  app.deviceRegistry.on('numbers', ({ device_id, at, numbers }) => ingest.deviceNumbers(device_id, at, numbers));
  // Storage work runs in the background: a failure is logged, never an unhandled rejection.
  const guarded = (what: string, work: () => Promise<unknown>) => () => {
    work().catch((err: unknown) => log.warn({ err }, `metric history: ${what} failed`));
  };
  // A device removed, a node revoked: their history goes with them (docs/metrics.md).
  app.deviceRegistry.on('removed', (id) => guarded('removing a device', () => ingest.forgetDevice(id))());
  app.nodeRegistry.on('status', ({ node_id, status }) => { if (status === 'revoked') guarded('removing a node', () => ingest.forgetNode(node_id))(); });
  const flush = setInterval(guarded('flush', () => store.flush()), config.flushIntervalMs).unref();
  let retention: NodeJS.Timeout | undefined;
  const metricRetention = {
    start: () => { retention ??= setInterval(guarded('retention', () => store.enforceRetention(Date.now())), RETENTION_INTERVAL_MS).unref(); },
    stop: () => { clearInterval(retention); retention = undefined; },
  };
  metricRetention.start();
  app.decorate('metricStore', store);
  app.decorate('metricRetention', metricRetention);
  app.addHook('onClose', async () => {
    clearInterval(flush);
    metricRetention.stop();
    await store.close();
  });
}, { name: 'metrics', dependencies: ['db', 'nodes', 'demos', 'devices'] });

async function openStore(config: ServerConfig, log: FastifyBaseLogger): Promise<MetricStore> {
  const tiers = defaultTiers(config.metricsMaxBytes);
  if (config.databaseUrl) return PostgresMetricStore.open(config.databaseUrl, tiers, config.metricsMaxBytes);
  try {
    return new SqliteMetricStore(path.join(config.dataDir, METRICS_FILE), tiers, config.metricsMaxBytes);
  } catch (err) {
    if (!passingStoreFailure(err)) throw err;
    log.warn({ err }, 'cannot open the metric history file (full disk?): keeping metric history in memory until the next start');
    return new SqliteMetricStore(':memory:', tiers, config.metricsMaxBytes);
  }
}
