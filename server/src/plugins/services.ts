import fp from 'fastify-plugin';
import type { ServerConfig } from '../config.js';
import type { Db } from '../db/database.js';
import { Store } from '../db/store.js';
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
import { LogRetention, walLimitFor } from '../services/log-retention.js';
import { LogWriter } from '../services/log-writer.js';
import { FaultInjector } from '../services/fault-injection.js';
import { StorageMonitor, WAL_FILES } from '../services/storage-monitor.js';
import { SERVER_VERSION } from '../version.js';
import { AuditRepository } from '../repositories/audit-repository.js';
import { CommandsRepository } from '../repositories/commands-repository.js';
import { CommandService } from '../services/command-service.js';
import { TerminalRelay } from '../services/terminal-relay.js';
import { DeferredWrites } from '../services/deferred-writes.js';
import { defaultFdReserve, DescriptorBudget, readFdLimits } from '../services/descriptor-budget.js';

export interface Services {
  config: ServerConfig;
  db: Db;
  store: Store;
  deferredWrites: DeferredWrites;
  descriptors: DescriptorBudget;
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
  // A full disk: the store opens degraded, writes that fail wait in memory, all recovers once there is room.
  const walLimitBytes = walLimitFor(config.logRetentionBytes, config.minFreeBytes);
  const store = Store.open(config.dataDir, app.log.child({ component: 'store' }), { walLimitBytes, minFreeBytes: config.minFreeBytes });
  const { db, searchIndexer: searchIndex } = store;
  const storage = new StorageMonitor(config.dataDir, { minFreeBytes: config.minFreeBytes, maxBytes: config.logRetentionBytes, checkIntervalMs: config.storageCheckIntervalMs });
  const deferred = new DeferredWrites((failure) => storage.writeFailed(failure), app.log.child({ component: 'deferred-writes' }));
  const registry = new NodeRegistry(new NodesRepository(db), config.flushIntervalMs, deferred);
  const demos = new DemoRegistry(new DemosRepository(db), deferred);
  registry.summarizeDemos = (nodeId) => demos.summary(nodeId);
  demos.on('changed', ({ node_id }) => registry.announce(node_id));
  const logs = new LogsRepository(db);
  const faults = FaultInjector.fromSpec(config.testFaults);
  const logWriter = new LogWriter(db, logs, demos, faults, app.log.child({ component: 'log-writer' }));
  logWriter.on('records', () => searchIndex.wake());
  logWriter.on('failure', (failure) => storage.writeFailed(failure));
  storage.on('changed', ({ state }) => {
    if (state !== 'ok' && state !== 'low') return;
    store.recover();
    deferred.retry();
    registry.flush();
  });

  // Each look retention takes also refreshes the storage state: a fast stream meets the floor (refused, full) at once.
  const disk = () => {
    const { used_bytes: usedBytes, free_bytes: freeBytes } = storage.check();
    return { usedBytes, freeBytes, walBytes: storage.usedBytes(WAL_FILES), dataBytes: store.dataBytes() };
  };
  const logRetention = new LogRetention(logs, store, searchIndex, disk, {
    maxAgeMs: config.logRetentionMs, maxBytes: config.logRetentionBytes, minFreeBytes: config.minFreeBytes, walLimitBytes, intervalMs: config.logRetentionIntervalMs,
  }, app.log.child({ component: 'log-retention' }));
  logWriter.on('records', () => logRetention.written());
  searchIndex.onIndexed = () => logRetention.schedule();
  logWriter.refusal = () => storage.refusal ?? logRetention.refusal;
  storage.on('changed', ({ state }) => { if (state === 'low' || state === 'full') logRetention.schedule(); });
  const validator = new ProtocolValidator();
  // The hub dispatches exec results to the command service, which sends requests through the hub.
  const hubServices = { registry, demos, logWriter } as ConstructorParameters<typeof AgentHub>[0];
  const agentHub = new AgentHub(hubServices, config, validator, app.log.child({ component: 'agent-hub' }));
  const commandsRepository = new CommandsRepository(db);
  const commands = new CommandService(commandsRepository, agentHub, { maxOutputBytes: config.execOutputMaxBytes }, app.log.child({ component: 'commands' }), deferred);
  hubServices.commands = commands;
  const terminals = new TerminalRelay(agentHub, config.terminalIdleMs, app.log.child({ component: 'terminals' }));
  hubServices.terminals = terminals;
  const fdLimit = readFdLimits()?.soft ?? Number.POSITIVE_INFINITY;
  const descriptors = new DescriptorBudget(fdLimit, config.fdReserve ?? defaultFdReserve(fdLimit));
  const services: Services = {
    config, db, store, deferredWrites: deferred, descriptors, registry, demos, logs, logWriter, faults, storage, logRetention, commands, commandsRepository, terminals, agentHub,
    audit: new AuditRepository(db, deferred),
    users: new UsersRepository(db),
    sessions: new SessionsRepository(db, deferred),
    apiTokens: new ApiTokensRepository(db, deferred),
    liveHub: new LiveHub({ registry, demos, logWriter, commands, storage }, validator, () => ({ version: SERVER_VERSION, storage: storage.status }), app.log.child({ component: 'live' })),
    loginThrottle: new LoginThrottle(config.loginMaxFailures, config.loginWindowMs),
  };
  services.sessions.deleteExpired();
  registry.start();
  logRetention.start();
  storage.start();
  deferred.start(config.storageCheckIntervalMs);
  services.agentHub.start();
  app.decorate('services', services);

  app.addHook('preClose', async () => {
    terminals.stop();
    services.agentHub.stop();
    services.liveHub.closeAll();
  });
  app.addHook('onClose', async () => {
    await logRetention.stop();
    storage.stop();
    logWriter.flush();
    registry.stop();
    deferred.stop();
    await store.close();
  });
}, { name: 'services' });
