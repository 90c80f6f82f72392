import path from 'node:path';
import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.js';
import { Checkpointer } from '../db/checkpointer.js';
import { openDatabase, type Db } from '../db/database.js';
import { attachSearchIndex, LogSearchIndex } from '../db/log-search-index.js';
import { AgentHub } from '../hub/agent-hub.js';
import { LiveHub } from '../live/live-hub.js';
import { NodeRegistry } from '../live/node-registry.js';
import { ApiTokensRepository } from '../repositories/api-tokens-repository.js';
import { NodesRepository } from '../repositories/nodes-repository.js';
import { SessionsRepository } from '../repositories/sessions-repository.js';
import { UsersRepository } from '../repositories/users-repository.js';
import { ProtocolValidator } from '@dvic/protocol';
import { DemoRegistry } from '../live/demo-registry.js';
import { DemosRepository } from '../repositories/demos-repository.js';
import { LogsRepository } from '../repositories/logs-repository.js';
import { LoginThrottle } from '../services/login-throttle.js';
import { LogRetention } from '../services/log-retention.js';
import { LogWriter } from '../services/log-writer.js';
import { FaultInjector } from '../services/fault-injection.js';
import { StorageMonitor } from '../services/storage-monitor.js';
import { SERVER_VERSION } from '../version.js';
import { AuditRepository } from '../repositories/audit-repository.js';
import { CommandsRepository } from '../repositories/commands-repository.js';
import { CommandService } from '../services/command-service.js';
import { TerminalRelay } from '../services/terminal-relay.js';

export interface Services {
  config: ServerConfig;
  db: Db;
  users: UsersRepository;
  sessions: SessionsRepository;
  apiTokens: ApiTokensRepository;
  registry: NodeRegistry;
  demos: DemoRegistry;
  logs: LogsRepository;
  logWriter: LogWriter;
  faults: FaultInjector;
  storage: StorageMonitor;
  logRetention: LogRetention;
  commands: CommandService;
  commandsRepository: CommandsRepository;
  terminals: TerminalRelay;
  audit: AuditRepository;
  agentHub: AgentHub;
  liveHub: LiveHub;
  loginThrottle: LoginThrottle;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
  }
}

/** Builds the shared services once and tears them down when the server closes. */
export const servicesPlugin = fp<{ config: ServerConfig }>(async (app, { config }) => {
  const dbFile = path.join(config.dataDir, 'dvic.sqlite');
  const db = openDatabase(dbFile);
  const checkpointer = new Checkpointer(db, dbFile, 1000, (err) => app.log.warn({ err }, 'WAL checkpoints stay in the main thread'));
  const registry = new NodeRegistry(new NodesRepository(db), config.flushIntervalMs);
  const demos = new DemoRegistry(new DemosRepository(db));
  registry.summarizeDemos = (nodeId) => demos.summary(nodeId);
  demos.on('changed', ({ node_id }) => registry.announce(node_id));
  const searchFile = path.join(config.dataDir, 'dvic-search.sqlite');
  attachSearchIndex(db, searchFile);
  const searchIndex = new LogSearchIndex(dbFile, searchFile,
    (message) => app.log.warn({ component: 'log-search-index' }, `full-text indexing: ${message}`));
  const logs = new LogsRepository(db);
  const faults = FaultInjector.fromSpec(config.testFaults);
  const storage = new StorageMonitor(config.dataDir, { minFreeBytes: config.minFreeBytes, maxBytes: config.logRetentionBytes, checkIntervalMs: 5000 });
  const logWriter = new LogWriter(db, logs, demos, faults, app.log.child({ component: 'log-writer' }));
  logWriter.on('records', () => searchIndex.wake());
  logWriter.on('failure', (failure) => storage.writeFailed(failure));
  storage.on('changed', () => { logWriter.refuseWith = storage.refusal; });
  logWriter.refuseWith = storage.refusal;
  const logRetention = new LogRetention(logs, searchIndex, {
    maxAgeMs: config.logRetentionMs, maxBytes: config.logRetentionBytes, intervalMs: config.logRetentionIntervalMs,
  }, app.log.child({ component: 'log-retention' }));
  const validator = new ProtocolValidator();
  // The hub dispatches exec results to the command service, which sends requests through the hub.
  const hubServices = { registry, demos, logWriter } as ConstructorParameters<typeof AgentHub>[0];
  const agentHub = new AgentHub(hubServices, config, validator, app.log.child({ component: 'agent-hub' }));
  const commandsRepository = new CommandsRepository(db);
  const commands = new CommandService(commandsRepository, agentHub, { maxOutputBytes: config.execOutputMaxBytes }, app.log.child({ component: 'commands' }));
  hubServices.commands = commands;
  const terminals = new TerminalRelay(agentHub, config.terminalIdleMs, app.log.child({ component: 'terminals' }));
  hubServices.terminals = terminals;
  const services: Services = {
    config, db, registry, demos, logs, logWriter, faults, storage, logRetention, commands, commandsRepository, terminals, agentHub,
    audit: new AuditRepository(db),
    users: new UsersRepository(db),
    sessions: new SessionsRepository(db),
    apiTokens: new ApiTokensRepository(db),
    liveHub: new LiveHub({ registry, demos, logWriter, commands, storage }, validator, () => ({ version: SERVER_VERSION, storage: storage.status }), app.log.child({ component: 'live' })),
    loginThrottle: new LoginThrottle(config.loginMaxFailures, config.loginWindowMs),
  };
  services.sessions.deleteExpired();
  registry.start();
  logRetention.start();
  storage.start();
  services.agentHub.start();
  app.decorate('services', services);

  app.addHook('preClose', async () => {
    terminals.stop();
    services.agentHub.stop();
    services.liveHub.closeAll();
  });
  app.addHook('onClose', async () => {
    logRetention.stop();
    storage.stop();
    logWriter.flush();
    registry.stop();
    await Promise.all([searchIndex.stop(), checkpointer.stop()]);
    db.close();
  });
}, { name: 'services' });
