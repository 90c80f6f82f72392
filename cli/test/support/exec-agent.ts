// A simulated agent that runs commands the way a test says, answering as the real agent does.
import type { AgentToServerMessage, ExecRequestMessage, ServerToAgentMessage } from '@dvic/protocol';
import type { SimulatedAgent } from '../../../server/test/support/simulated-agent.mjs';

export interface Outcome {
  stdout?: string;
  stderr?: string;
  exit_code: number | null;
  signal?: string | null;
  cancelled?: boolean;
}

/**
 * Answers every exec.request with output and a result; a command whose outcome is null keeps
 * running until an exec.cancel ends it (killed, as the agent does).
 */
export function runCommands(agent: SimulatedAgent, outcome: (request: ExecRequestMessage['data']) => Outcome | null): void {
  const send = (message: AgentToServerMessage) => agent.send(message);
  const finish = (command_id: string, o: Outcome) => {
    if (o.stdout) send({ type: 'exec.output', data: { command_id, stream: 'stdout', seq: 0, data: o.stdout } });
    if (o.stderr) send({ type: 'exec.output', data: { command_id, stream: 'stderr', seq: o.stdout ? 1 : 0, data: o.stderr } });
    send({ type: 'exec.result', data: { command_id, exit_code: o.exit_code, signal: o.signal ?? null, duration_ms: 5, ...(o.cancelled ? { cancelled: true } : {}) } });
  };
  agent.ws.on('message', (data, binary) => {
    if (binary) return;
    const message = JSON.parse(data.toString()) as ServerToAgentMessage;
    if (message.type === 'exec.request') {
      const o = outcome(message.data);
      if (o) finish(message.data.command_id, o);
    } else if (message.type === 'exec.cancel') {
      finish(message.data.command_id, { exit_code: null, signal: 'SIGKILL', cancelled: true });
    }
  });
}
