// A simulated agent's demo: its state and its log lines, shipped the way the real agent ships them.
import type { DemoLogsMessage, LogRecord, LogsAckMessage } from '@dvic/protocol';
import type { SimulatedAgent } from '../../../server/test/support/simulated-agent.mjs';

type Line = [LogRecord['level'], string] | LogRecord;

export class SimulatedDemo {
  private offset = 0;
  private batches = 0;

  constructor(private readonly agent: SimulatedAgent, readonly demo: string, readonly token = `${demo}-token-0000000001`.slice(0, 22)) {}

  /** Says the demo runs (or not), as its owner sees it: trusted unless another uid owns its log file. */
  state(alive: boolean, extra: { pid?: number; user?: string; file_uid?: number; trusted?: boolean } = {}): void {
    this.agent.send({ type: 'demo.state', data: { full: false, demos: [{ token: this.token, demo: this.demo, pid: extra.pid ?? 42, alive, ...extra }] } });
  }

  /** Ships lines and resolves once the server stored them (logs.ack). */
  async write(lines: Line[]): Promise<void> {
    const id = `b${++this.batches}`;
    const from = this.offset;
    const records = lines.map((line, i): LogRecord => (Array.isArray(line)
      ? { ts: new Date().toISOString(), level: line[0], message: line[1], offset: from + i }
      : { ...line, offset: from + i }));
    this.offset += lines.length;
    const batch: DemoLogsMessage = { type: 'demo.logs', id, data: { token: this.token, demo: this.demo, start_offset: from, end_offset: this.offset, records } };
    this.agent.send(batch);
    await this.agent.next<LogsAckMessage>((m) => m.type === 'logs.ack' && m.id === id);
  }

  /** Continues on another connection of the same node (after the server restarted). */
  reconnected(agent: SimulatedAgent): SimulatedDemo {
    const next = new SimulatedDemo(agent, this.demo, this.token);
    next.offset = this.offset;
    next.batches = this.batches;
    return next;
  }
}
