import type { IncomingMessage } from 'node:http';
import type { WebSocket, RawData } from 'ws';
import { CloseCode, decodeBinaryFrame, ErrorCode, MAX_FRAME_BYTES, PROTOCOL_VERSION, type AgentToServerMessage, type HelloMessage } from '@dvic/protocol';
import { verifyNodeSignature } from '../services/node-keys.js';
import { SERVER_VERSION } from '../version.js';
import type { NodeRecord } from '../repositories/nodes-repository.js';
import type { AgentHub } from './agent-hub.js';
import { handlers } from './handlers/index.js';

const SERVER_CAPABILITIES: string[] = [];

type State = 'challenged' | 'authenticated' | 'closed';

/**
 * One agent WebSocket: challenge, verify the hello, then dispatch every message to its handler.
 * Nothing an agent sends can throw out of here: bad input is answered, counted and logged.
 */
export class AgentConnection {
  state: State = 'challenged';
  nodeId: string | undefined;
  capabilities: readonly string[] = [];
  /** The largest frame the agent accepts (its hello says; the protocol's limit until then). */
  maxFrameBytes: number = MAX_FRAME_BYTES;
  /** Pings sent since the last sign of life; the hub drops the connection at 3. */
  missedPongs = 0;
  readonly remoteAddress: string;
  private readonly nonce: string;
  private readonly authTimer: NodeJS.Timeout;
  private invalidCount = 0;
  /** The hello is being verified (its node read from the database): frames before the welcome are not the agent's to send. */
  private verifying = false;

  constructor(private readonly socket: WebSocket, request: IncomingMessage, private readonly hub: AgentHub) {
    this.remoteAddress = request.socket.remoteAddress ?? 'unknown';
    this.nonce = hub.nonces.issue();
    this.authTimer = setTimeout(() => this.refuse(CloseCode.authTimeout, 'auth failed: challenge expired'), hub.config.authTimeoutMs);
    socket.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    socket.on('pong', () => this.onLifeSign());
    socket.on('error', (err) => hub.log.debug({ err, remote: this.remoteAddress }, 'agent socket error'));
    socket.on('close', (code, reason) => this.onClose(code, reason.toString()));
    this.send({
      type: 'challenge',
      data: { protocol: PROTOCOL_VERSION, nonce: this.nonce, expires_in_ms: hub.config.authTimeoutMs, server_version: SERVER_VERSION },
    });
  }

  /** Sends a message; false when the agent's own frame limit (from its hello) is too small for it. */
  send(message: object): boolean {
    const text = JSON.stringify(message);
    if (Buffer.byteLength(text) > this.maxFrameBytes) {
      this.hub.log.warn({ nodeId: this.nodeId, bytes: Buffer.byteLength(text), limit: this.maxFrameBytes }, 'message larger than the agent accepts: not sent');
      return false;
    }
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(text);
    return true;
  }

  /** Bytes queued on the socket, not yet taken by the agent. */
  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  sendBinary(frame: Buffer): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame, { binary: true });
  }

  ping(): void {
    this.missedPongs++;
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping();
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }

  /** Drops the TCP connection without a closing handshake (the peer is not answering anyway). */
  terminate(): void {
    this.socket.terminate();
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    const bytes = data as Buffer;
    this.onLifeSign();
    if (this.state === 'challenged') return this.verifying ? undefined : this.onHelloFrame(bytes, isBinary);
    if (this.state !== 'authenticated') return;
    if (isBinary) {
      const frame = decodeBinaryFrame(bytes);
      if (!frame) return this.reject(undefined, ErrorCode.invalidMessage, 'binary frame with an unknown opcode or channel 0');
      this.hub.stats.countMessage('binary', bytes.length);
      this.hub.emit('binary', { nodeId: this.nodeId!, ...frame });
      return;
    }
    const { result, message } = this.hub.validator.parse(bytes.toString('utf8'), 'agent-to-server');
    this.hub.stats.countMessage(result.ok ? result.type : 'invalid', bytes.length);
    if (!result.ok) return this.reject(message, result.code, result.message);
    this.dispatch(message as AgentToServerMessage);
  }

  private dispatch(message: AgentToServerMessage): void {
    const handler = handlers[message.type] as ((ctx: object, m: AgentToServerMessage) => void) | undefined;
    if (!handler) return this.reject(message, ErrorCode.unsupported, `${message.type} is not supported by this server`);
    try {
      handler({
        nodeId: this.nodeId!, send: (m: object) => this.send(m), services: this.hub.services, log: this.hub.log,
        relay: (type: string, m: AgentToServerMessage) => (this.hub.emit as (event: string, ...args: unknown[]) => boolean)(type, this.nodeId!, m),
      }, message);
    } catch (err) {
      this.hub.log.error({ err, nodeId: this.nodeId, type: message.type }, 'handler failed');
      this.reject(message, ErrorCode.internal, `the server failed to handle ${message.type}`);
    }
  }

  private onHelloFrame(bytes: Buffer, isBinary: boolean): void {
    const { result, message } = isBinary
      ? { result: { ok: false as const, message: 'binary frame' }, message: undefined }
      : this.hub.validator.parse(bytes.toString('utf8'), 'agent-to-server');
    if (!result.ok || (message as { type: string }).type !== 'hello') {
      return this.refuse(CloseCode.policyViolation, `expected a valid hello: ${result.ok ? (message as { type: string }).type : result.message}`.slice(0, 120));
    }
    this.authenticate(message as HelloMessage);
  }

  private authenticate({ data: hello }: HelloMessage): void {
    if (hello.nonce !== this.nonce) {
      const why = this.hub.nonces.wasIssued(hello.nonce) ? 'replayed nonce' : 'nonce was not issued for this connection';
      return this.refuse(CloseCode.replayedNonce, `auth failed: ${why}`, hello.node_id);
    }
    const known = this.hub.registry.knownForHello(hello.node_id);
    if (known) return this.admit(known, hello);
    // Enrolled, re-keyed or revoked on another replica of the lab: the database knows.
    this.verifying = true;
    this.hub.registry.forHello(hello.node_id).then(
      (node) => this.admit(node, hello),
      (err: Error) => {
        this.hub.log.warn({ nodeId: hello.node_id, err: err.message }, 'cannot read a node to verify its agent');
        this.refuse(CloseCode.tryAgainLater, 'the server cannot read its nodes now: try again', hello.node_id);
      },
    );
  }

  private admit(node: NodeRecord | undefined, hello: HelloMessage['data']): void {
    if (this.state !== 'challenged') return; // closed (or timed out) while the node was read
    if (!node) return this.refuse(CloseCode.unknownNode, 'unknown node', hello.node_id);
    if (node.status === 'revoked') return this.refuse(CloseCode.nodeRevoked, 'node revoked', hello.node_id);
    if (!verifyNodeSignature(node.publicKey, hello.nonce, hello.node_id, hello.signature)) {
      return this.refuse(CloseCode.authFailed, 'auth failed: bad signature', hello.node_id);
    }

    clearTimeout(this.authTimer);
    this.state = 'authenticated';
    this.nodeId = node.id;
    this.capabilities = hello.capabilities;
    this.maxFrameBytes = Math.min(hello.max_frame_bytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
    this.hub.stats.authenticated++;
    if (!this.hub.register(this)) return;
    this.send({
      type: 'welcome',
      data: {
        node_id: node.id, name: node.name, protocol: Math.min(hello.protocol, PROTOCOL_VERSION),
        server_version: SERVER_VERSION, capabilities: SERVER_CAPABILITIES, max_frame_bytes: MAX_FRAME_BYTES,
        config: { metrics_interval_s: this.hub.config.metricsIntervalS, ...node.agentConfig },
        ...(this.hub.updateKeyPem ? { update_key: this.hub.updateKeyPem } : {}),
      },
    });
    this.hub.registry.markOnline(node.id, { agentVersion: hello.agent_version, host: hello.host });
    this.hub.emit('connected', node.id);
    this.hub.log.info({ nodeId: node.id, name: node.name, remote: this.remoteAddress, agentVersion: hello.agent_version }, 'agent connected');
  }

  /** Closes an unauthenticated connection with a clear reason, and records the attempt. */
  private refuse(code: number, reason: string, claimedNodeId?: string): void {
    if (this.state !== 'challenged') return;
    clearTimeout(this.authTimer);
    this.state = 'closed';
    this.hub.stats.countAuthFailure(reason);
    this.hub.log.warn({ remote: this.remoteAddress, claimedNodeId, code }, `agent refused: ${reason}`);
    this.socket.close(code, reason);
  }

  /** Answers a bad message with an error; the connection stays open. */
  private reject(message: unknown, code: string, text: string): void {
    this.hub.stats.invalidMessages++;
    // One noisy agent must not flood the log: the first few, then every hundredth.
    if (++this.invalidCount <= 5 || this.invalidCount % 100 === 0) {
      this.hub.log.warn({ nodeId: this.nodeId, code, count: this.invalidCount }, `refused agent message: ${text}`);
    }
    const ref = message && typeof message === 'object' ? (message as { id?: unknown; type?: unknown }) : {};
    this.send({
      type: 'error',
      ...(typeof ref.id === 'string' ? { id: ref.id } : {}),
      data: { code, message: text.slice(0, 1024), ...(typeof ref.type === 'string' ? { ref_type: ref.type.slice(0, 64) } : {}) },
    });
  }

  private onLifeSign(): void {
    this.missedPongs = 0;
    if (this.nodeId) this.hub.registry.touch(this.nodeId);
  }

  private onClose(code: number, reason: string): void {
    clearTimeout(this.authTimer);
    const wasAuthenticated = this.state === 'authenticated';
    this.state = 'closed';
    if (wasAuthenticated) this.hub.unregister(this, `connection closed (${code}${reason ? ` ${reason}` : ''})`);
  }
}
