#!/usr/bin/env node
import fs from 'node:fs';
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { LocalAgent } from './local-agent/local-agent.js';
import { ensureAdmin } from './services/admin-bootstrap.js';

async function main(): Promise<void> {
  const config = loadConfig();
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const app = await buildApp(config);
  const admin = await ensureAdmin(app.users, config.adminPassword);
  const address = await app.listen({ host: config.host, port: config.port });
  const port = Number(new URL(address).port);
  const browseHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  const lines = [`DVIC Demo Monitor is running: http://${browseHost}:${port}/`];
  if (admin.created && admin.generated) {
    lines.push(`Admin login: ${admin.username} / ${admin.password}   (generated now and shown only once)`);
  } else if (admin.created) {
    lines.push(`Admin login: ${admin.username} / the password in DVIC_ADMIN_PASSWORD`);
  } else {
    lines.push('Admin login: the admin account created at first start');
  }
  process.stdout.write(`\n${lines.map((l) => `  ${l}`).join('\n')}\n\n`);

  let localAgent: LocalAgent | undefined;
  if (config.localAgent) {
    const agentHost = browseHost === 'localhost' ? '127.0.0.1' : browseHost;
    localAgent = new LocalAgent(app.nodeRegistry, {
      dataDir: config.dataDir, python: config.python, metricsIntervalS: config.metricsIntervalS,
      serverUrl: `ws://${agentHost.includes(':') ? `[${agentHost}]` : agentHost}:${port}/api/v1/agent`,
      agentPath: process.env.DVIC_AGENT_PATH,
    }, app.log.child({ component: 'local-agent' }));
    localAgent.start();
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

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`dvic-server: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`dvic-server: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
