/**
 * The names of one lab's NATS objects, all from one prefix: replicas of a lab share a prefix, and
 * every test takes a prefix of its own, so nothing is shared between labs or test runs.
 */
export interface ClusterNames {
  /** KV bucket: node id -> the replica holding its agent (NodeClaim), with the lease as max age. */
  readonly holdersBucket: string;
  /** JetStream stream of live events fanned out to every replica. */
  readonly eventsStream: string;
  readonly eventsSubject: string;
  /** An empty message after a replica changed the alert setup (rules, channels, mutes): the others read it again. */
  readonly alertConfigSubject: string;
  /** Where a replica takes requests for the nodes it holds. */
  requestSubject(replica: string): string;
  /** Where the holder takes messages (AgentSend) for the agents it holds, from the other replicas. */
  agentSendSubject(holder: string): string;
  /** Binary frames for a held node's agent, from replica origin (the frame as the agent protocol has it). */
  agentFramesSubject(holder: string, origin: string, nodeId: string): string;
  /** Agent messages (AgentRelay) answering work a replica started on a node another replica holds. */
  agentRelaySubject(origin: string): string;
  /** Binary frames from a node's agent, for the replica whose terminal or tunnel they belong to. */
  relayedFramesSubject(origin: string, nodeId: string): string;
}

const PREFIX = /^[A-Za-z0-9_-]{1,32}$/;
/** As protocol/schemas/common.json replicaId: no '.', '*', '>' or space, which NATS subjects give a meaning. */
const REPLICA_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function clusterNames(prefix = 'dvic'): ClusterNames {
  if (!PREFIX.test(prefix)) throw new Error(`cluster prefix "${prefix}": 1 to 32 letters, digits, _ or -`);
  return {
    holdersBucket: `${prefix}_node_holders`,
    eventsStream: `${prefix}_live_events`,
    eventsSubject: `${prefix}.live.events`,
    alertConfigSubject: `${prefix}.alerts.config.changed`,
    requestSubject: (replica) => `${prefix}.replica.${checkReplicaId(replica)}.requests`,
    // The node id is a UUID checked by the caller, '*' only where a replica subscribes to all of them.
    agentSendSubject: (holder) => `${prefix}.replica.${checkReplicaId(holder)}.agent.send`,
    agentFramesSubject: (holder, origin, nodeId) => `${prefix}.replica.${checkReplicaId(holder)}.agent.frames.${origin === '*' ? origin : checkReplicaId(origin)}.${nodeId}`,
    agentRelaySubject: (origin) => `${prefix}.replica.${checkReplicaId(origin)}.relay.messages`,
    relayedFramesSubject: (origin, nodeId) => `${prefix}.replica.${checkReplicaId(origin)}.relay.frames.${nodeId}`,
  };
}

export function checkReplicaId(id: string): string {
  if (!REPLICA_ID.test(id)) throw new Error(`replica id "${id}": 1 to 64 letters, digits, _ or -`);
  return id;
}
