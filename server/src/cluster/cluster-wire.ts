import { ErrorCode, ProtocolValidator, type ReplicaReply } from '@dvic/protocol';
import { ApiError } from '../errors.js';

/** The schemas of what replicas exchange over NATS (protocol/schemas/cluster). */
export const ClusterSchema = {
  nodeClaim: 'https://dvic.devinci.fr/protocol/v1/cluster/node-claim.json',
  replicaRequest: 'https://dvic.devinci.fr/protocol/v1/cluster/replica-request.json',
  replicaReply: 'https://dvic.devinci.fr/protocol/v1/cluster/replica-reply.json',
  replicaEvent: 'https://dvic.devinci.fr/protocol/v1/cluster/replica-event.json',
  agentSend: 'https://dvic.devinci.fr/protocol/v1/cluster/agent-send.json',
  agentRelay: 'https://dvic.devinci.fr/protocol/v1/cluster/agent-relay.json',
} as const;

const validator = new ProtocolValidator();
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeWire(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/**
 * Parses what another replica sent and checks it against its schema: NATS subjects are open to
 * anything that can connect, so a bad payload is an error with a code, never a crash.
 */
export function decodeWire<T>(schemaId: string, data: Uint8Array): T {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new ApiError(400, ErrorCode.invalidJson, `invalid JSON from the bus: ${(err as Error).message}`);
  }
  const problem = validator.check(schemaId, value);
  if (problem) throw new ApiError(400, ErrorCode.invalidMessage, `${schemaId.replace(/^.*\//, '')}: ${problem}`);
  return value as T;
}

/** Live messages carried by the events stream are checked against their own live schema too. */
export function liveMessageProblem(message: unknown): string | null {
  const result = validator.validate(message, 'server-to-client');
  return result.ok ? null : result.message;
}

/** Agent messages relayed by another replica are checked against their own schema too (agent-to-server). */
export function agentMessageProblem(message: unknown): string | null {
  const result = validator.validate(message, 'agent-to-server');
  return result.ok ? null : result.message;
}

/** An error as a replica answers it: its code, message and HTTP status; a bug is internal_error. */
export function errorReply(err: unknown): Extract<ReplicaReply, { ok: false }> {
  if (err instanceof ApiError) return { ok: false, error: { code: err.code, message: err.message.slice(0, 1024), status: err.statusCode } };
  return { ok: false, error: { code: ErrorCode.internal, message: String((err as Error).message ?? err).slice(0, 1024), status: 500 } };
}

/** A node id is a KV key and part of requests: a UUID and nothing else (no NATS wildcard). */
export function checkNodeId(nodeId: string): string {
  if (validator.check('https://dvic.devinci.fr/protocol/v1/common.json#/$defs/uuid', nodeId)) {
    throw new ApiError(400, ErrorCode.badRequest, `node id "${nodeId.slice(0, 64)}" is not a UUID`);
  }
  return nodeId;
}
