import type { AgentToServerMessage } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { DemoRegistry } from '../../live/demo-registry.js';
import type { NodeRegistry } from '../../live/node-registry.js';
import type { LogWriter } from '../../services/log-writer.js';
import type { CommandService } from '../../services/command-service.js';
import type { TerminalRelay } from '../../services/terminal-relay.js';
import { handleAgentStatus } from './agent-status.js';
import { handleDemoLogs } from './demo-logs.js';
import { handleDemoState } from './demo-state.js';
import { handleAgentError } from './error.js';
import { handleExecOutput, handleExecResult } from './exec.js';
import { handleHardwareState } from './hardware.js';
import { handleSystemLogs } from './system-logs.js';
import { handleTerminalClose, handleTerminalOpened } from './terminal.js';

/** The services message handlers work with. */
export interface HubServices {
  registry: NodeRegistry;
  demos: DemoRegistry;
  logWriter: LogWriter;
  commands: CommandService;
  terminals: TerminalRelay;
}

/** What a handler may use: the node it speaks for, a way to answer, and the shared services. */
export interface HandlerContext {
  nodeId: string;
  send(message: object): void;
  services: HubServices;
  log: FastifyBaseLogger;
}

type MessageOf<T extends AgentToServerMessage['type']> = Extract<AgentToServerMessage, { type: T }>;
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
  error: handleAgentError,
};
