import { ErrorCode as NatsErrorCode, NatsError, type Msg, type NatsConnection, type Subscription } from 'nats';
import { ErrorCode, type ReplicaReply, type ReplicaRequest } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { ClusterNames } from './cluster-names.js';
import { checkNodeId, ClusterSchema, decodeWire, encodeWire, errorReply } from './cluster-wire.js';
import type { NodeHolders } from './node-holders.js';

/** Runs a request on this replica, for a node whose agent is connected here. Throw an ApiError to answer an error. */
export type NodeRequestHandler = (request: ReplicaRequest) => Promise<Record<string, unknown>>;

export interface ReplicaRouterOptions {
  replica: string;
  /** How long a routed request may take before the caller gets replica_unreachable. */
  timeoutMs: number;
  /** Requests from other replicas run at once at most; beyond, they are answered overloaded (503). */
  maxInFlight?: number;
}

const DEFAULT_MAX_IN_FLIGHT = 256;

/**
 * Sends a request for a node to the replica holding its agent (NATS request/reply on that
 * replica's subject) and serves the requests sent to this one. Whatever the caller's replica, the
 * answer or the error is the same as if the agent were connected to it.
 */
export class ReplicaRouter {
  private subscription: Subscription | undefined;
  private inFlight = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: ClusterNames,
    private readonly holders: NodeHolders,
    private readonly handler: NodeRequestHandler,
    private readonly options: ReplicaRouterOptions,
  ) {}

  /** Takes the requests other replicas route here. */
  start(): void {
    this.subscription = this.nc.subscribe(this.names.requestSubject(this.options.replica), {
      callback: (err, msg) => { if (!err) void this.serve(msg); },
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.drain();
  }

  /** The node's answer, from whichever replica holds it. */
  async request(nodeId: string, kind: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const request: ReplicaRequest = { node_id: checkNodeId(nodeId), kind, body };
    const claim = await this.holders.holder(nodeId).catch((err: unknown) => {
      if (err instanceof ApiError) throw err;
      throw new ApiError(503, ErrorCode.replicaUnreachable, `cannot find which replica holds node ${nodeId}: the bus did not answer (${(err as Error).message})`);
    });
    if (!claim) throw new ApiError(409, ErrorCode.nodeOffline, `node ${nodeId} is offline: no replica holds its agent`);
    if (claim.replica === this.options.replica) return this.runHere(request);
    let answer: Msg;
    try {
      answer = await this.nc.request(this.names.requestSubject(claim.replica), encodeWire(request), { timeout: this.options.timeoutMs });
    } catch (err) {
      throw routingError(err, claim.replica, nodeId, this.options.timeoutMs);
    }
    const reply = decodeWire<ReplicaReply>(ClusterSchema.replicaReply, answer.data);
    if (!reply.ok) throw new ApiError(reply.error.status ?? 502, knownCode(reply.error.code), reply.error.message);
    return reply.result;
  }

  private async serve(msg: Msg): Promise<void> {
    if (this.inFlight >= (this.options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)) {
      respond(msg, { ok: false, error: { code: ErrorCode.overloaded, message: `replica ${this.options.replica} has too many requests running: try again`, status: 503 } });
      return;
    }
    this.inFlight++;
    let reply: ReplicaReply;
    try {
      reply = { ok: true, result: await this.runHere(decodeWire<ReplicaRequest>(ClusterSchema.replicaRequest, msg.data)) };
    } catch (err) {
      reply = errorReply(err);
    } finally {
      this.inFlight--;
    }
    respond(msg, reply);
  }

  /** The agent may have left this replica since the caller looked: then the node is offline here. */
  private runHere(request: ReplicaRequest): Promise<Record<string, unknown>> {
    if (!this.holders.holds(request.node_id)) {
      throw new ApiError(409, ErrorCode.nodeOffline, `node ${request.node_id} is offline: its agent left replica ${this.options.replica}`);
    }
    return this.handler(request);
  }
}

/** Answers a routed request; an answer over the bus's limit becomes an error saying so. */
function respond(msg: Msg, reply: ReplicaReply): void {
  try {
    msg.respond(encodeWire(reply));
  } catch (err) {
    if (err instanceof NatsError && err.code === NatsErrorCode.MaxPayloadExceeded) {
      respond(msg, { ok: false, error: { code: ErrorCode.payloadTooLarge, message: "the answer is over the bus's message limit", status: 413 } });
    }
    // Otherwise this replica's bus connection closed meanwhile: the caller gets replica_unreachable.
  }
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** A code another replica sent: one of ours, or internal_error (the message keeps what it said). */
function knownCode(code: string): ErrorCode {
  return KNOWN_CODES.has(code) ? (code as ErrorCode) : ErrorCode.internal;
}

function routingError(err: unknown, replica: string, nodeId: string, timeoutMs: number): ApiError {
  const code = err instanceof NatsError ? err.code : '';
  if (code === NatsErrorCode.MaxPayloadExceeded) {
    return new ApiError(413, ErrorCode.payloadTooLarge, `the request for node ${nodeId} is over the bus's message limit`);
  }
  const why = code === NatsErrorCode.NoResponders ? 'is not listening (it died; its lease has not expired yet)' : `did not answer within ${timeoutMs} ms`;
  return new ApiError(503, ErrorCode.replicaUnreachable, `replica ${replica} holds node ${nodeId} but ${why}`);
}
