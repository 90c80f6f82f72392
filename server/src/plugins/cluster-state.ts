import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ConfigPart } from '../alerts/alert-config.js';
import { notifyThroughOutbox, tellFromOutbox } from '../cluster/alert-outbox.js';
import { EventFanout } from '../cluster/event-fanout.js';
import { runAsLeader, type LeaderJob } from '../cluster/leader-jobs.js';
import { LeaderLease } from '../cluster/leader-lease.js';
import { LeaderOutbox } from '../cluster/leader-outbox.js';
import { bindLiveFanout } from '../cluster/live-fanout.js';
import { orphanedWorkJob } from '../cluster/orphaned-work.js';
import { rateLimitedWarning } from '../cluster/rate-limited-warning.js';
import { replicaGone } from '../cluster/replica-presence.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** On a replica of a lab on PostgreSQL: whether it runs the leader's work now (logs, tests). */
    clusterLeader?: { isLeader(): boolean };
  }
}

/** A leader cut off from the database steps down (3 x this) before the database frees the lock (~11 s): docs/scale-out.md. */
const LEASE_CHECK_MS = 2000;
/**
 * Events are read from a little before the registries began loading: the stream's timestamps are
 * the NATS server's clock, which may be behind this one. An event applied twice sets what it set.
 */
const CLOCK_SKEW_MS = 5000;
/** How often the outbox relay looks for what a dead leader recorded and did not send (new entries go at once). */
const OUTBOX_POLL_MS = 10_000;

/**
 * The cluster state of a replica (docs/scale-out.md), after the live hub and the alerts exist:
 * every live event to and from the other replicas (their changes applied to this replica's
 * registries), and, on a shared PostgreSQL database, the work only one replica does at a time
 * (alerts, retention, the demo and device clocks) run by whichever holds the leader lease. With
 * one SQLite file per replica (tests only) each replica keeps doing that work itself.
 */
export const clusterStatePlugin = fp<{ loadingSince: Date }>(async (app, { loadingSince }) => {
  const log = app.log.child({ component: 'cluster-state' });
  const { replicaId, nc, names } = app.cluster;
  // From when this replica began loading its registries: an event published while they loaded
  // (the leader marking a node offline after this replica read it online) is applied too.
  const refused = rateLimitedWarning(log, 'refused events from the bus');
  const fanout = await EventFanout.open(nc, names, {
    replica: replicaId, since: new Date(loadingSince.getTime() - CLOCK_SKEW_MS),
    onRefused: (problem) => refused({ problem }),
  });
  const unbindFanout = bindLiveFanout(app.liveHub, fanout, log, {
    nodes: app.nodeRegistry, demos: app.demoRegistry, catalog: app.demoCatalog, devices: app.deviceRegistry,
  });
  const unbindAlerts = app.config.databaseUrl ? shareAlertChanges(app, fanout, log) : () => undefined;
  fanout.allListening(); // before leading: what the replay held is let go at once
  const stopLeading = app.config.databaseUrl ? await leadWithOthers(app, app.config.databaseUrl) : async () => undefined;
  if (app.config.databaseUrl) loadUnknownIdsFirst(app);
  app.addHook('onClose', async () => {
    await stopLeading();
    unbindAlerts();
    unbindFanout();
    await fanout.stop();
  });
}, { name: 'cluster-state', dependencies: ['cluster', 'live-hub', 'alerts', 'logs', 'metrics', 'demo-catalog', 'devices', 'commands', 'enrollments', 'agent-updates', 'deployments'] });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A node or device another replica made a moment ago is known here once its event arrives (tens
 * of milliseconds); a request naming its id may come first (a script's next call through the load
 * balancer). Such an id is read from the database before the route looks it up in memory.
 */
function loadUnknownIdsFirst(app: FastifyInstance): void {
  app.addHook('preHandler', async (request) => {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string' || !UUID.test(id)) return;
    if (request.routeOptions.url?.includes('/devices/')) await app.deviceRegistry.loadOne(id);
    else if (request.routeOptions.url?.includes('/nodes/')) await app.nodeRegistry.find(id);
  });
}

/**
 * On a shared database, alert configuration and acknowledgements made on any replica reach the
 * others at once: a committed change of rules, channels or mutes is published (alert.config) and
 * every other replica reads that part again from the database; an ack made elsewhere (alert.updated)
 * stops the leader's repeats of that alert. Returns the unbind.
 */
function shareAlertChanges(app: FastifyInstance, fanout: EventFanout, log: FastifyBaseLogger): () => void {
  const { config, engine } = app.alerts;
  const publish = (part: ConfigPart) => {
    fanout.publish({ type: 'alert.config', data: { part } })
      .catch((err: Error) => log.warn({ part, err: err.message }, 'cannot tell the other replicas of an alert configuration change'));
  };
  config.on('changed', publish);
  const offRemote = fanout.listen((message) => {
    if (message.type === 'alert.updated') engine.applyRemote(message.data.alert);
    if (message.type !== 'alert.config') return;
    config.reload(message.data.part).catch((err: Error) => log.warn({ part: message.data.part, err: err.message }, 'cannot read the alert configuration again'));
  });
  return () => {
    config.off('changed', publish);
    offRemote();
  };
}

/** Stops the leader's work here, then runs it while this replica holds the lease. Returns the unbind. */
async function leadWithOthers(app: FastifyInstance, databaseUrl: string): Promise<() => Promise<void>> {
  const log = app.log.child({ component: 'leader' });
  const lease = new LeaderLease({ databaseUrl, name: `${app.config.natsPrefix}-leader`, checkMs: LEASE_CHECK_MS });
  const { engine, notify, notifier, config } = app.alerts;
  const outbox = new LeaderOutbox(lease, { deliver: tellFromOutbox(notify), pollMs: OUTBOX_POLL_MS, log });
  const jobs = leaderJobs(app, outbox);
  // Started by their plugins as on a single server: a follower must not run them.
  for (const job of [...jobs].reverse()) await job.stop();
  const untell = notifyThroughOutbox(engine, outbox, notify, notifier, (n) => config.channelsOf(n.rule), app.sql);
  const unbind = runAsLeader(lease, jobs, log);
  lease.start();
  app.decorate('clusterLeader', { isLeader: () => lease.isLeader() });
  return async () => {
    await unbind();
    await lease.stop();
    untell();
  };
}

/**
 * In start order: the deliveries first (pending ones resumed), then the relay, so that what the
 * engine records on start is sent; stopped in reverse, the relay stops before the notifier drops
 * its groups, so that their entries stay unsent for the next leader. The relay and the engine
 * need the job before them (afterPrevious): the engine records nothing while the relay does not
 * run. The others run whatever happens to those.
 */
function leaderJobs(app: FastifyInstance, outbox: LeaderOutbox): LeaderJob[] {
  const { engine, deliveryJob } = app.alerts;
  return [
    { name: 'alert deliveries', start: () => deliveryJob.start(), stop: () => deliveryJob.stop() },
    { ...outbox.job(), afterPrevious: true },
    { name: 'alert engine', start: () => engine.start(), stop: async () => { engine.stop(); await engine.settled(); }, afterPrevious: true },
    { name: 'log retention', start: () => app.logRetention.start(), stop: () => app.logRetention.stop() },
    { name: 'metric retention', start: () => app.metricRetention.start(), stop: () => app.metricRetention.stop() },
    { name: 'demo clock', start: () => app.demoCatalog.start(), stop: () => app.demoCatalog.stopTicks() },
    { name: 'device clock', start: () => app.deviceRegistry.startTicks(), stop: () => app.deviceRegistry.stopTicks() },
    nodeStatusJob(app),
    goneReplicasWorkJob(app),
  ];
}

/** How long a presence probe may wait: an answer means there, only "no responders" means gone. */
const PRESENCE_TIMEOUT_MS = 2000;

/**
 * Commands, enrollments, updates and deployments run in the memory of the replica that started
 * them; each replica ends its own at start, the leader those of replicas that are gone (looked at
 * every lease: a replica restarted under a new id, or dead).
 */
function goneReplicasWorkJob(app: FastifyInstance): LeaderJob {
  const { nc, names, replicaId } = app.cluster;
  const { commands, enrollments, agentUpdates, deployments } = app;
  return orphanedWorkJob([
    { name: 'commands', owners: () => commands.unfinishedOwners(), endOwnedBy: (owner) => commands.endOwnedBy(owner) },
    { name: 'enrollments', owners: () => enrollments.unfinishedOwners(), endOwnedBy: (owner) => enrollments.failInterrupted(owner) },
    { name: 'agent updates', owners: () => agentUpdates.unfinishedOwners(), endOwnedBy: (owner) => agentUpdates.endInterrupted(owner) },
    { name: 'deployments', owners: () => deployments.unfinishedOwners(), endOwnedBy: (owner) => deployments.endInterrupted(owner) },
  ], {
    self: replicaId, periodMs: app.config.clusterLeaseMs, log: app.log.child({ component: 'gone-replicas' }),
    gone: (replica) => replicaGone(nc, names, replica, PRESENCE_TIMEOUT_MS),
  });
}

/** An agent moving between replicas is released by one and claimed by the next within this. */
const HANDOVER_GRACE_MS = 3000;

/**
 * Replicas leave a node's status to the one holding its agent; a node whose replica died (or a
 * lab that starts with nodes online in the database) is marked offline by the leader once no
 * replica has held it for a lease (the claims a new leader reads come within one).
 */
function nodeStatusJob(app: FastifyInstance): LeaderJob {
  const { holders, remoteHolders } = app.cluster;
  const registry = app.nodeRegistry;
  const held = (id: string) => holders.holds(id) || remoteHolders.get(id) !== undefined;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => { timers.delete(timer); fn(); }, ms).unref();
    timers.add(timer);
  };
  const offlineIfUnheld = (id: string, reason: string) => { if (!held(id)) registry.markOffline(id, reason); };
  const onChanged = (nodeId: string, _before: unknown, after: unknown) => {
    if (!after) later(HANDOVER_GRACE_MS, () => offlineIfUnheld(nodeId, 'its replica released it and no replica holds it'));
  };
  return {
    name: 'node status',
    start: () => {
      remoteHolders.on('changed', onChanged);
      later(app.config.clusterLeaseMs, () => {
        for (const node of registry.list()) if (node.status === 'online') offlineIfUnheld(node.id, 'no replica holds its agent');
      });
    },
    stop: () => {
      remoteHolders.off('changed', onChanged);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
