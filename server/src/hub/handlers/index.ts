import type { AgentToServerMessage } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { DemoRegistry } from '../../live/demo-registry.js';
import type { NodeRegistry } from '../../live/node-registry.js';
import type { LogWriter } from '../../services/log-writer.js';
import { handleAgentStatus } from './agent-status.js';
import { handleDemoLogs } from './demo-logs.js';
import { handleDemoState } from './demo-state.js';
import { handleDeployFetch, handleDeployStatus } from './deploy.js';
import { handleAgentError } from './error.js';
import { handleExecOutput, handleExecResult } from './exec.js';
import { handleHardwareState } from './hardware.js';
import { handleSystemLogs } from './system-logs.js';
import { handleTerminalClose, handleTerminalOpened } from './terminal.js';
import { handleTunnelClose, handleTunnelOpened } from './tunnel.js';
import { handleUpdateFetch, handleUpdateStatus } from './update.js';

/** The stores message handlers write to (services that need the hub subscribe to its events instead). */
export interface HubServices {
  registry: NodeRegistry;
  demos: DemoRegistry;
  logWriter: LogWriter;
}

export type MessageOf<T extends AgentToServerMessage['type']> = Extract<AgentToServerMessage, { type: T }>;

/** Messages the hub hands on as typed events (the command service and the terminal relay listen). */
export const RELAYED_TYPES = [
  'exec.output', 'exec.result', 'terminal.opened', 'terminal.close', 'tunnel.opened', 'tunnel.close',
  'deploy.status', 'deploy.fetch',
  'update.status', 'update.fetch',
] as const satisfies readonly AgentToServerMessage['type'][];
export type RelayedType = (typeof RELAYED_TYPES)[number];

/** What a handler may use: the node it speaks for, a way to answer, the stores, and the hub's events. */
export interface HandlerContext {
  nodeId: string;
  send(message: object): void;
  services: HubServices;
  log: FastifyBaseLogger;
  relay<T extends RelayedType>(type: T, message: MessageOf<T>): void;
}

type Handler<T extends AgentToServerMessage['type']> = (ctx: HandlerContext, message: MessageOf<T>) => void;

/**
 * The one dispatch table from message type to handler, one file per message family. A valid
 * agent message whose type is not here is answered with error "unsupported".
 */
export const handlers: { [T in AgentToServerMessage['type']]?: Handler<T> } = {
  'hardware.state': handleHardwareState,
  'agent.status': handleAgentStatus,
  'demo.state': handleDemoState,
  'demo.logs': handleDemoLogs,
  'system.logs': handleSystemLogs,
  'exec.output': handleExecOutput,
  'exec.result': handleExecResult,
  'terminal.opened': handleTerminalOpened,
  'terminal.close': handleTerminalClose,
  'tunnel.opened': handleTunnelOpened,
  'tunnel.close': handleTunnelClose,
  'deploy.status': handleDeployStatus,
  'deploy.fetch': handleDeployFetch,
  'update.status': handleUpdateStatus,
  'update.fetch': handleUpdateFetch,
  error: handleAgentError,
};
