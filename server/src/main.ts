#!/usr/bin/env node
import fs from 'node:fs';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { DatabaseUnreachableError } from './db/postgres-sql.js';
import { StoreUnavailableError } from './db/store.js';
import { LocalAgent } from './local-agent/local-agent.js';
import { ensureAdmin } from './services/admin-bootstrap.js';
import { raiseFdLimit } from './services/descriptor-budget.js';
import { prettyStream } from './services/pretty-log.js';

async function main(): Promise<void> {
  const config = loadConfig();
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const fdLimit = raiseFdLimit(); // before anything opens: every agent socket is a descriptor
  const app = await buildApp(config, config.logFormat === 'pretty' ? { level: config.logLevel, stream: prettyStream(process.stdout) } : undefined);
  app.log.info({ fdLimit: fdLimit.limits }, fdLimit.message);
  const admin = await ensureAdmin(app.users, config.adminPassword);
  const address = await app.listen({ host: config.host, port: config.port });
  const port = Number(new URL(address).port);
  const browseHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const tls = app.tlsCertSha256 !== null;

  const lines = [`DVIC Demo Monitor is running: ${tls ? 'https' : 'http'}://${browseHost}:${port}/`];
  if (admin.created && admin.generated) {
    lines.push(`Admin login: ${admin.username} / ${admin.password}   (generated now and shown only once)`);
  } else if (admin.created) {
    lines.push(`Admin login: ${admin.username} / the password in DVIC_ADMIN_PASSWORD`);
  } else {
    lines.push('Admin login: the admin account created at first start');
    if (config.adminPassword) lines.push(...ADMIN_PASSWORD_IGNORED);
  }
  if (!tls && !isLoopback(config.host)) lines.push(...plainHttpWarning(config.host, config.trustProxy !== false));
  // On stderr: stdout carries the log lines (JSON for machines, or DVIC_LOG_FORMAT=pretty).
  process.stderr.write(`\n${lines.map((l) => `  ${l}`).join('\n')}\n\n`);

  let localAgent: LocalAgent | undefined;
  if (config.localAgent) {
    const agentHost = browseHost === 'localhost' ? '127.0.0.1' : browseHost;
    localAgent = new LocalAgent(app.nodeRegistry, {
      dataDir: config.dataDir, python: config.python, metricsIntervalS: config.metricsIntervalS,
      serverUrl: `${tls ? 'wss' : 'ws'}://${agentHost.includes(':') ? `[${agentHost}]` : agentHost}:${port}/api/v1/agent`,
      agentPath: process.env.DVIC_AGENT_PATH, terminalShell: config.localAgentShell,
      ...(config.natsUrl && config.databaseUrl ? { sharedAsReplica: config.replicaId } : {}),
      ...(tls ? { tlsCertSha256: app.tlsCertSha256!, tlsCaFile: config.tlsCertFile } : {}),
    }, app.log.child({ component: 'local-agent' }));
    startLocalAgent(localAgent, app);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    await localAgent?.stop();
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', (s) => void stop(s));
  process.on('SIGTERM', (s) => void stop(s));
}

const ADMIN_PASSWORD_IGNORED = [
  'DVIC_ADMIN_PASSWORD is ignored: the admin account already exists (it only sets the first password).',
  'To reset the admin password: npm run reset-admin (or node server/dist/reset-admin.js), same DVIC_DATA_DIR.',
];

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

function plainHttpWarning(host: string, behindProxy: boolean): string[] {
  return [
    `WARNING: serving plain http on ${host}: passwords, session cookies and terminal keystrokes cross the network in clear.`,
    behindProxy
      ? 'DVIC_TRUST_PROXY is set: make sure only the TLS reverse proxy can reach this port (docs/deploy.md).'
      : 'Set DVIC_TLS_CERT and DVIC_TLS_KEY, or put a TLS reverse proxy in front with DVIC_TRUST_PROXY (docs/deploy.md).',
  ];
}

/** The local agent needs to write its config: on a full disk it starts once there is room. */
function startLocalAgent(localAgent: LocalAgent, app: Awaited<ReturnType<typeof buildApp>>): void {
  localAgent.start().catch((err: unknown) => {
    app.log.error({ err }, 'the local agent could not start: trying again when the disk has room');
    app.storage.once('changed', () => startLocalAgent(localAgent, app));
  });
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`dvic-server: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof StoreUnavailableError || err instanceof DatabaseUnreachableError) {
    // EX_TEMPFAIL: systemd (Restart=on-failure) starts the server again a little later.
    process.stderr.write(`dvic-server: ${err.message}\n`);
    process.exit(75);
  }
  process.stderr.write(`dvic-server: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
