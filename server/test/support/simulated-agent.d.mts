// Types of simulated-agent.mjs (plain JavaScript: the load benchmark runs it without a build).
import type { WebSocket } from 'ws';
import type { AgentToServerMessage, HardwareState, HelloMessage, HostFacts, ServerToAgentMessage, WelcomeMessage } from '@dvic/protocol';

export function authMessage(nonce: string, nodeId: string): string;
export function sampleHardware(overrides?: Partial<HardwareState>): HardwareState;
export function sampleHost(): HostFacts;

export interface SimulatedAgent {
  ws: WebSocket;
  /** Received and not yet taken by next(). */
  messages: ServerToAgentMessage[];
  binary: Buffer[];
  hello: HelloMessage;
  welcome: WelcomeMessage;
  /** Sends a message; tests also send broken ones (a string as it is) on purpose. */
  send(message: AgentToServerMessage | string | object): void;
  sendHardware(overrides?: Partial<HardwareState>): void;
  /** The next received message matching the predicate (or one already received); M names what the predicate picks. */
  next<M extends ServerToAgentMessage = ServerToAgentMessage>(predicate?: (m: ServerToAgentMessage) => boolean, timeoutMs?: number): Promise<M>;
  /** The next received message of this type. */
  nextOf<T extends ServerToAgentMessage['type']>(type: T, timeoutMs?: number): Promise<Extract<ServerToAgentMessage, { type: T }>>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export interface ConnectOptions {
  url: string;
  nodeId: string;
  privateKeyPem: string;
  sign?: (message: string) => string;
  nonce?: (serverNonce: string) => string;
  onChallenge?: (ws: WebSocket, challenge: ServerToAgentMessage) => boolean | void;
  capabilities?: string[];
  /** Extra hello fields (e.g. max_frame_bytes). */
  hello?: Partial<HelloMessage['data']>;
}

/** Connects as a node; resolves once welcomed, rejects with {code, reason} when the server closes first. */
export function connectAgent(options: ConnectOptions): Promise<SimulatedAgent>;
