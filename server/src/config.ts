import os from 'node:os';
import path from 'node:path';
import { DEFAULT_ALERT_POLICY, type AlertPolicy } from './alerts/alert-policy.js';
import { DEFAULT_POLICY, type DemoPolicy } from './live/demo-state.js';
import { isTimeZone } from './live/lab-schedule.js';

/** Everything the server reads from its environment, parsed once at start. */
export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /**
   * PostgreSQL instead of the SQLite file in dataDir (DVIC_DATABASE_URL, postgres:// or
   * postgresql://; scale-out, docs/scale-out.md). Holds a password: never logged.
   */
  databaseUrl: string | undefined;
  /** Connections to PostgreSQL at most (DVIC_DATABASE_POOL). */
  databasePoolSize: number;
  /** The agent file the server ships to nodes and updates them to (DVIC_AGENT_FILE; default agent/dvic_agent.py of this install). */
  agentFile: string | undefined;
  /** The update-signing key (DVIC_UPDATE_KEY_FILE; default <data dir>/update-key.pem): one file shared by every replica of a lab. */
  updateKeyFile: string | undefined;
  /** How long a node's self-update may take, from the request to its healthy or rolled-back report. */
  updateNodeTimeoutMs: number;
  /** Password for the admin user created at first start; generated and printed when absent. */
  adminPassword: string | undefined;
  /** Enroll this machine and run the real agent as a child process. */
  localAgent: boolean;
  /** Python interpreter for the local agent. */
  python: string;
  /** Shell of terminals on the server's own machine (DVIC_LOCAL_AGENT_SHELL); else the login shell of its user. */
  localAgentShell: string | undefined;
  /** How often agents are pinged; a node missing 3 pings in a row goes offline. */
  pingIntervalMs: number;
  /** Time an agent has to answer the challenge. */
  authTimeoutMs: number;
  /** Default hardware.state interval pushed to agents. */
  metricsIntervalS: number;
  sessionTtlMs: number;
  /** Failed logins allowed per client address within loginWindowMs before 429. */
  loginMaxFailures: number;
  loginWindowMs: number;
  /** How often in-memory node state (hardware, last seen) is written to the database. */
  flushIntervalMs: number;
  logLevel: string;
  /** json (one JSON line per event, for machines) or pretty (for a terminal). */
  logFormat: 'json' | 'pretty';
  /** Log records older than this are deleted. */
  logRetentionMs: number;
  /** The oldest log records are deleted while the store is over this size. */
  logRetentionBytes: number;
  logRetentionIntervalMs: number;
  /** Output kept per command (stdout + stderr); beyond it is cut and marked truncated. */
  execOutputMaxBytes: number;
  execDefaultTimeoutS: number;
  execMaxTimeoutS: number;
  /** A terminal with no input or output for this long is closed. */
  terminalIdleMs: number;
  /** Disk budget of the metric history (DVIC_METRICS_MAX_MB): the oldest points go first past it. */
  metricsMaxBytes: number;
  /** Free space kept on the data directory's disk: below it, logs are refused (agents keep them). */
  minFreeBytes: number;
  /** How often the disk's free space is looked at (and writes that waited for room are tried again). */
  storageCheckIntervalMs: number;
  /** File descriptors kept free for the API and the database: agent sockets are refused (1013) past the limit minus this. */
  fdReserve: number | undefined;
  /** Test-only failure points (DVIC_TEST_FAULTS, services/fault-injection.ts). */
  testFaults: string | undefined;
  /** Base URL nodes use to reach this server (e.g. https://dvic.example.org); else taken from each request. */
  publicUrl: string | undefined;
  /**
   * Scale-out: the public base URL of every replica of the lab, in order (DVIC_REPLICA_URLS); every
   * agent config handed out lists their agent URLs (server_urls) to fail over between. Empty: none.
   */
  replicaUrls: string[];
  /** PEM certificate chain and key files: the server then serves https and wss itself. */
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  /** Fastify trustProxy: which peers' X-Forwarded-For/-Proto/-Host are believed (false: none). */
  trustProxy: boolean | number | string[];
  /** Browser origins allowed besides the server's own and DVIC_PUBLIC_URL's (scheme://host[:port]). */
  allowedOrigins: string[];
  /** The largest artifact accepted (DVIC_ARTIFACT_MAX_MB) and all artifacts together (DVIC_ARTIFACTS_MAX_MB). */
  artifactMaxBytes: number;
  artifactsMaxTotalBytes: number;
  /** Nodes a deployment works on at once unless it says (DVIC_DEPLOY_MAX_PARALLEL). */
  deployMaxParallel: number;
  /** How long a deploy waits for its node to come back after a disconnect before it fails (DVIC_DEPLOY_RECONNECT_WAIT_S). */
  deployReconnectWaitMs: number;
  /** How demos are judged: lab time zone, restart window, crash loop, forgetting (demos issue). */
  demoPolicy: DemoPolicy;
  /** Alert grouping, flapping and delivery retries (alerts issue, docs/alerts.md). */
  alertPolicy: AlertPolicy;
  /** Scale-out (docs/scale-out.md): the NATS bus replicas share (DVIC_NATS_URL); unset: one server, no cluster. */
  natsUrl: string | undefined;
  /** This replica on the bus (DVIC_REPLICA_ID, default <host name>-<pid>): letters, digits, _ and -. */
  replicaId: string;
  /** Prefix of every NATS object of the lab (DVIC_NATS_PREFIX, default dvic): replicas of one lab share it. */
  natsPrefix: string;
  /** How long a replica's claim on a node lives without renewal (DVIC_CLUSTER_LEASE_S): a dead replica's nodes go offline after it. */
  clusterLeaseMs: number;
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return {
    host: env.DVIC_HOST || '0.0.0.0',
    port: integer(env, 'DVIC_PORT', 8787, 0, 65535),
    dataDir: path.resolve(env.DVIC_DATA_DIR || './data'),
    databaseUrl: databaseUrl(env.DVIC_DATABASE_URL),
    databasePoolSize: integer(env, 'DVIC_DATABASE_POOL', 10, 1, 1000),
    agentFile: env.DVIC_AGENT_FILE ? path.resolve(env.DVIC_AGENT_FILE) : undefined,
    updateKeyFile: env.DVIC_UPDATE_KEY_FILE ? path.resolve(env.DVIC_UPDATE_KEY_FILE) : undefined,
    updateNodeTimeoutMs: number(env, 'DVIC_UPDATE_NODE_TIMEOUT_S', 300, 1, 86_400) * 1000,
    adminPassword: env.DVIC_ADMIN_PASSWORD || undefined,
    localAgent: env.DVIC_LOCAL_AGENT !== '0',
    python: env.DVIC_PYTHON || '/usr/bin/python3',
    localAgentShell: env.DVIC_LOCAL_AGENT_SHELL || undefined,
    pingIntervalMs: integer(env, 'DVIC_PING_INTERVAL_MS', 15_000, 50, 3_600_000),
    authTimeoutMs: integer(env, 'DVIC_AUTH_TIMEOUT_MS', 10_000, 50, 600_000),
    metricsIntervalS: number(env, 'DVIC_METRICS_INTERVAL_S', 5, 0.2, 3600),
    sessionTtlMs: integer(env, 'DVIC_SESSION_TTL_HOURS', 168, 1, 24 * 365) * 3_600_000,
    loginMaxFailures: integer(env, 'DVIC_LOGIN_MAX_FAILURES', 10, 1, 1_000_000),
    loginWindowMs: integer(env, 'DVIC_LOGIN_WINDOW_S', 600, 1, 86_400) * 1000,
    flushIntervalMs: integer(env, 'DVIC_FLUSH_INTERVAL_MS', 10_000, 10, 3_600_000),
    logLevel: env.DVIC_LOG_LEVEL || 'info',
    logFormat: logFormat(env.DVIC_LOG_FORMAT),
    logRetentionMs: number(env, 'DVIC_LOG_RETENTION_DAYS', 14, 0.0001, 36_500) * 86_400_000,
    logRetentionBytes: number(env, 'DVIC_LOG_RETENTION_MB', 1024, 0.001, 10_000_000) * 1024 * 1024,
    logRetentionIntervalMs: integer(env, 'DVIC_LOG_RETENTION_INTERVAL_S', 60, 1, 86_400) * 1000,
    execOutputMaxBytes: integer(env, 'DVIC_EXEC_OUTPUT_MAX_BYTES', 1024 * 1024, 1024, 256 * 1024 * 1024),
    execDefaultTimeoutS: number(env, 'DVIC_EXEC_DEFAULT_TIMEOUT_S', 60, 0.1, 86_400),
    execMaxTimeoutS: number(env, 'DVIC_EXEC_MAX_TIMEOUT_S', 3600, 0.1, 86_400),
    terminalIdleMs: number(env, 'DVIC_TERMINAL_IDLE_S', 1800, 1, 7 * 86_400) * 1000,
    metricsMaxBytes: number(env, 'DVIC_METRICS_MAX_MB', 1024, 0.1, 10_000_000) * 1024 * 1024,
    minFreeBytes: number(env, 'DVIC_MIN_FREE_MB', 100, 0, 10_000_000) * 1024 * 1024,
    storageCheckIntervalMs: integer(env, 'DVIC_STORAGE_CHECK_INTERVAL_MS', 5000, 50, 600_000),
    fdReserve: env.DVIC_FD_RESERVE ? integer(env, 'DVIC_FD_RESERVE', 0, 0, 1_000_000) : undefined,
    testFaults: env.DVIC_TEST_FAULTS || undefined,
    publicUrl: env.DVIC_PUBLIC_URL ? env.DVIC_PUBLIC_URL.replace(/\/+$/, '') : undefined,
    replicaUrls: replicaUrls(env.DVIC_REPLICA_URLS),
    ...tls(env),
    trustProxy: trustProxy(env.DVIC_TRUST_PROXY),
    allowedOrigins: origins(env.DVIC_ALLOWED_ORIGINS),
    artifactMaxBytes: number(env, 'DVIC_ARTIFACT_MAX_MB', 2048, 0.001, 10_000_000) * 1024 * 1024,
    artifactsMaxTotalBytes: number(env, 'DVIC_ARTIFACTS_MAX_MB', 20_480, 0.001, 100_000_000) * 1024 * 1024,
    deployMaxParallel: integer(env, 'DVIC_DEPLOY_MAX_PARALLEL', 4, 1, 1000),
    deployReconnectWaitMs: number(env, 'DVIC_DEPLOY_RECONNECT_WAIT_S', 300, 1, 86_400) * 1000,
    demoPolicy: demoPolicy(env),
    alertPolicy: alertPolicy(env),
    ...cluster(env),
  };
}

const CLUSTER_NAME = /^[A-Za-z0-9_-]+$/;

/** As cluster/cluster-names.ts checks them: these names become parts of NATS subjects. */
function cluster(env: NodeJS.ProcessEnv): Pick<ServerConfig, 'natsUrl' | 'replicaId' | 'natsPrefix' | 'clusterLeaseMs'> {
  const natsUrl = env.DVIC_NATS_URL || undefined;
  // The message never repeats the URL: it may hold the bus's password.
  if (natsUrl && !natsUrl.split(',').every(isNatsUrl)) throw new ConfigError('DVIC_NATS_URL is not a NATS URL such as nats://127.0.0.1:4222 (or nats://user:password@host:4222; several comma-separated)');
  const replicaId = env.DVIC_REPLICA_ID || `${os.hostname().replace(/[^A-Za-z0-9_-]/g, '_')}-${process.pid}`.slice(-64);
  if (replicaId.length > 64 || !CLUSTER_NAME.test(replicaId)) throw new ConfigError(`DVIC_REPLICA_ID: "${replicaId}" must be 1 to 64 letters, digits, _ or -`);
  const natsPrefix = env.DVIC_NATS_PREFIX || 'dvic';
  if (natsPrefix.length > 32 || !CLUSTER_NAME.test(natsPrefix)) throw new ConfigError(`DVIC_NATS_PREFIX: "${natsPrefix}" must be 1 to 32 letters, digits, _ or -`);
  return { natsUrl, replicaId, natsPrefix, clusterLeaseMs: number(env, 'DVIC_CLUSTER_LEASE_S', 30, 1, 3600) * 1000 };
}

function isNatsUrl(part: string): boolean {
  if (!/^(nats|tls|wss?):\/\/[^\s]+$/.test(part.trim())) return false;
  try {
    return new URL(part.trim()).host !== '';
  } catch {
    return false;
  }
}

function logFormat(raw: string | undefined): 'json' | 'pretty' {
  if (!raw || raw === 'json') return 'json';
  if (raw === 'pretty') return 'pretty';
  throw new ConfigError(`DVIC_LOG_FORMAT must be json or pretty, not ${raw}`);
}

/** A postgres:// URL or nothing; the message never repeats the URL (it may hold a password). */
function databaseUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let protocol: string;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    throw new ConfigError('DVIC_DATABASE_URL is not a URL: expected postgres://user[:password]@host[:port]/database');
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new ConfigError(`DVIC_DATABASE_URL must be a postgres:// or postgresql:// URL, not ${protocol}//...`);
  }
  return raw;
}

function demoPolicy(env: NodeJS.ProcessEnv): DemoPolicy {
  const timeZone = env.DVIC_LAB_TIMEZONE || DEFAULT_POLICY.timeZone;
  if (!isTimeZone(timeZone)) throw new ConfigError(`DVIC_LAB_TIMEZONE: unknown time zone ${timeZone}`);
  return {
    timeZone,
    restartWindowMs: number(env, 'DVIC_DEMO_RESTART_WINDOW_S', 10, 0, 86_400) * 1000,
    crashLoopRestarts: integer(env, 'DVIC_CRASH_LOOP_RESTARTS', 5, 1, 1_000_000),
    crashLoopWindowMs: number(env, 'DVIC_CRASH_LOOP_MINUTES', 10, 0.01, 10_080) * 60_000,
    forgetAfterMs: number(env, 'DVIC_DEMO_FORGET_DAYS', 7, 0.00001, 36_500) * 86_400_000,
  };
}

function alertPolicy(env: NodeJS.ProcessEnv): AlertPolicy {
  const d = DEFAULT_ALERT_POLICY;
  return {
    groupWaitMs: integer(env, 'DVIC_ALERT_GROUP_WAIT_MS', d.groupWaitMs, 0, 600_000),
    groupWindowMs: number(env, 'DVIC_ALERT_GROUP_WINDOW_S', d.groupWindowMs / 1000, 0, 3600) * 1000,
    flapChanges: integer(env, 'DVIC_ALERT_FLAP_CHANGES', d.flapChanges, 2, 1000),
    flapWindowMs: number(env, 'DVIC_ALERT_FLAP_WINDOW_S', d.flapWindowMs / 1000, 1, 86_400) * 1000,
    flapStableMs: number(env, 'DVIC_ALERT_FLAP_STABLE_S', d.flapStableMs / 1000, 0.1, 86_400) * 1000,
    deliveryAttempts: integer(env, 'DVIC_ALERT_DELIVERY_ATTEMPTS', d.deliveryAttempts, 1, 20),
    retryBaseMs: integer(env, 'DVIC_ALERT_RETRY_BASE_MS', d.retryBaseMs, 1, 3_600_000),
    deliveryTimeoutMs: integer(env, 'DVIC_ALERT_DELIVERY_TIMEOUT_MS', d.deliveryTimeoutMs, 100, 120_000),
  };
}

function tls(env: NodeJS.ProcessEnv): { tlsCertFile: string | undefined; tlsKeyFile: string | undefined } {
  const cert = env.DVIC_TLS_CERT || undefined;
  const key = env.DVIC_TLS_KEY || undefined;
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError('DVIC_TLS_CERT and DVIC_TLS_KEY go together: set both (PEM files) or neither');
  return { tlsCertFile: cert && path.resolve(cert), tlsKeyFile: key && path.resolve(key) };
}

/** "" / 0 / false: trust no proxy; true: any; a number: that many hops; else a list of addresses or CIDRs. */
export function trustProxy(raw: string | undefined): boolean | number | string[] {
  const value = (raw ?? '').trim();
  if (value === '' || value === '0' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of list) {
    if (!/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(item) && !['loopback', 'linklocal', 'uniquelocal'].includes(item)) {
      throw new ConfigError(`DVIC_TRUST_PROXY: "${item}" is not an address, a CIDR range, "true" or a hop count`);
    }
  }
  return list;
}

/** The agent takes at most this many server URLs (agent/dvic_agent.py MAX_SERVER_URLS). */
const MAX_REPLICA_URLS = 16;

/**
 * DVIC_REPLICA_URLS: comma-separated base URLs as DVIC_PUBLIC_URL gives one (http(s)://host[:port],
 * a path prefix allowed), in order, each once, without the trailing slash. Wrong ones stop the
 * start here rather than reaching agents' config files.
 */
export function replicaUrls(raw: string | undefined): string[] {
  // An item is named by its position, never echoed: it may carry user:password@ (refused below).
  const urls = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((item, i) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new ConfigError(`DVIC_REPLICA_URLS: item ${i + 1} is not a URL such as https://dvic-2.example.org:8787`);
    }
    if (!/^https?:$/.test(url.protocol) || url.search || url.hash || url.username || url.password) {
      throw new ConfigError(`DVIC_REPLICA_URLS: item ${i + 1} must be http(s)://host[:port] (as DVIC_PUBLIC_URL), without query, fragment or credentials`);
    }
    return url.href.replace(/\/+$/, '');
  });
  if (new Set(urls).size !== urls.length) throw new ConfigError('DVIC_REPLICA_URLS: a replica is listed twice');
  if (urls.length > MAX_REPLICA_URLS) throw new ConfigError(`DVIC_REPLICA_URLS: ${urls.length} URLs, agents take at most ${MAX_REPLICA_URLS}`);
  return urls;
}

/** A comma-separated list of origins, each checked and normalised (scheme://host[:port], no path). */
export function origins(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean).map((item) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new ConfigError(`DVIC_ALLOWED_ORIGINS: "${item}" is not an origin such as https://dvic.example.org`);
    }
    if (!/^https?:$/.test(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username) {
      throw new ConfigError(`DVIC_ALLOWED_ORIGINS: "${item}" is not an origin (scheme://host[:port], nothing after)`);
    }
    return url.origin;
  });
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new ConfigError(`${name}=${raw} is not a number between ${min} and ${max}`);
  }
  return value;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const value = number(env, name, fallback, min, max);
  if (!Number.isInteger(value)) throw new ConfigError(`${name}=${env[name]} is not an integer`);
  return value;
}
