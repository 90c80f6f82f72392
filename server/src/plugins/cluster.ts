import fp from 'fastify-plugin';
import { connect, type NatsConnection } from 'nats';
import { AgentGateway } from '../cluster/agent-gateway.js';
import { ClusterLink } from '../cluster/cluster-link.js';
import { clusterNames, type ClusterNames } from '../cluster/cluster-names.js';
import { claimHubNodes } from '../cluster/hub-claims.js';
import { NodeHolders } from '../cluster/node-holders.js';
import { RemoteAgents } from '../cluster/remote-agents.js';
import { RemoteHolders } from '../cluster/remote-holders.js';
import { answerPresence } from '../cluster/replica-presence.js';
import { ReplicaRouter, type NodeRequestHandler } from '../cluster/replica-router.js';
import { natsConnectOptions } from '../cluster/nats-url.js';
import { ApiError } from '../errors.js';
import { ErrorCode } from '@dvic/protocol';

/**
 * What the other cluster parts use (live-event fan-out, leader work), on `app.cluster`:
 * - `replicaId`, `names` (this lab's NATS subjects, bucket and stream), `nc` (the replica's one
 *   NATS connection: share it, do not close it);
 * - `holders`: this replica's claims (NodeHolders: `holds(nodeId)`, `holder(nodeId)` from the bucket);
 * - `remoteHolders`: the nodes other replicas hold, followed from the bucket (`get(nodeId)`, event `changed`);
 * - `router`: `router.request(nodeId, kind, body)` runs a request on the replica holding the node;
 *   `handle(kind, handler)` registers what a kind does on the holder (answered 400 until registered);
 * - `link`: the agent hub as the services see it, cluster-wide (what `nodeLinkOf(app)` gives them).
 */
export interface ClusterApi {
  replicaId: string;
  names: ClusterNames;
  nc: NatsConnection;
  holders: NodeHolders;
  remoteHolders: RemoteHolders;
  router: ReplicaRouter;
  handle(kind: string, handler: NodeRequestHandler): void;
  link: ClusterLink;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Only on a replica of a scaled-out lab (DVIC_NATS_URL set): see ClusterApi. */
    cluster: ClusterApi;
  }
}

/** How long a routed request or a message for another replica's agent may wait for its answer. */
const BUS_TIMEOUT_MS = 5000;

/**
 * Makes this server one replica of a lab (docs/scale-out.md), registered only when DVIC_NATS_URL
 * is set: claims the nodes whose agents connect here, follows the other replicas' claims, and
 * gives the services a link through which every node of the lab is reachable.
 */
export const clusterPlugin = fp(async (app) => {
  const { config } = app;
  const log = app.log.child({ component: 'cluster' });
  const replica = config.replicaId;
  const names = clusterNames(config.natsPrefix);
  const nc = await connect({ ...natsConnectOptions(config.natsUrl!), name: `dvic-${replica}`, maxReconnectAttempts: -1, timeout: BUS_TIMEOUT_MS });
  const leaseMs = config.clusterLeaseMs;
  const holders = await NodeHolders.open(nc, names, {
    replica, leaseMs,
    onLost: (nodeId) => log.warn({ nodeId }, 'another replica holds this node now: its connection here goes with the missed pings'),
  });
  const remoteHolders = new RemoteHolders(nc, names, { replica, leaseMs, log });
  // Streams and job routes outlive the longest quiet spell of the work they carry.
  const idleMs = Math.max(2 * 3_600_000, config.execMaxTimeoutS * 1000, config.terminalIdleMs, config.updateNodeTimeoutMs) + 60_000;
  const gateway = new AgentGateway(nc, names, app.agentHub, { replica, idleMs, log });
  const agents = new RemoteAgents(nc, names, {
    replica, timeoutMs: BUS_TIMEOUT_MS, log, onUnreachable: (holder) => remoteHolders.markUnreachable(holder),
  });
  const link = new ClusterLink(app.agentHub, remoteHolders, gateway, agents);
  const handlers = new Map<string, NodeRequestHandler>();
  const router = new ReplicaRouter(nc, names, holders, (request) => {
    const handler = handlers.get(request.kind);
    if (!handler) throw new ApiError(400, ErrorCode.badRequest, `replica ${replica} does not handle "${request.kind}" requests`);
    return handler(request);
  }, { replica, timeoutMs: BUS_TIMEOUT_MS });
  gateway.start();
  agents.start(link);
  router.start();
  const presence = answerPresence(nc, names, replica);
  const unclaim = claimHubNodes(app.agentHub, holders, log);

  app.decorate('cluster', { replicaId: replica, names, nc, holders, remoteHolders, router, link, handle: (kind, handler) => { handlers.set(kind, handler); } });
  app.addHook('onClose', async () => {
    // The hub closed its agents before (preClose): their releases are on the bus; drain sends them.
    unclaim();
    holders.close();
    await Promise.all([gateway.stop(), agents.stop(), router.stop(), remoteHolders.close(), presence.drain()]);
    await nc.drain().catch(() => undefined);
  });
  log.info({ replica, prefix: config.natsPrefix, leaseMs }, 'replica of a scaled-out lab: joined the bus');
}, { name: 'cluster', dependencies: ['agent-hub'] });
