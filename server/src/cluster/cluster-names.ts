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
  /** Where a replica takes requests for the nodes it holds. */
  requestSubject(replica: string): string;
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
    requestSubject: (replica) => `${prefix}.replica.${checkReplicaId(replica)}.requests`,
  };
}

export function checkReplicaId(id: string): string {
  if (!REPLICA_ID.test(id)) throw new Error(`replica id "${id}": 1 to 64 letters, digits, _ or -`);
  return id;
}
