import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ExecOutputMessage, ExecResultMessage } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { AgentHub } from '../hub/agent-hub.js';
import type { DeferredWrites } from './deferred-writes.js';
import {
  FINAL_STATUSES, type CommandRecord, type CommandSpec, type CommandStatus, type CommandView, type CommandsRepository,
} from '../repositories/commands-repository.js';

export interface CommandServiceEvents {
  updated: [CommandView];
  output: [{ command_id: string; node_id: string; stream: 'stdout' | 'stderr'; offset: number; data: string }];
}

export interface Requester {
  userId: number | null;
  username: string;
  ip: string | null;
}

/** Beyond its timeout, a command whose agent says nothing more is declared lost after this grace. */
const RESULT_GRACE_MS = 30_000;

/** Shell-like display of argv, for lists and search. */
export function displayCommand(spec: Pick<CommandSpec, 'argv' | 'command'>): string {
  if (spec.command !== undefined) return spec.command;
  return (spec.argv ?? []).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

interface ActiveCommand {
  record: CommandRecord;
  outputBytes: number;
  watchdog?: NodeJS.Timeout;
}

const withoutOutput = (c: CommandView): CommandView => ({ ...c, stdout: '', stderr: '' });

/**
 * Runs commands on nodes: sends exec.request, collects streamed output up to a cap, records the
 * result, and makes sure every command ends: an agent that drops mid-command makes it "lost",
 * a queued one past its expiry becomes "expired".
 */
export class CommandService extends EventEmitter<CommandServiceEvents> {
  private readonly active = new Map<string, ActiveCommand>();
  /** Ended commands whose last state waits for the disk: shown from here until it is stored. */
  private readonly unstored = new Map<string, CommandRecord>();

  constructor(
    private readonly repository: CommandsRepository,
    private readonly hub: AgentHub,
    private readonly limits: { maxOutputBytes: number },
    private readonly log: FastifyBaseLogger,
    private readonly deferred: DeferredWrites,
  ) {
    super();
    for (const record of repository.unfinished()) {
      // The server restarted: a running command's result cannot arrive any more; a queued one waits on.
      if (record.status === 'running') this.finish({ record, outputBytes: 0 }, { status: 'lost', error: 'the server restarted while it ran' });
      else this.active.set(record.id, { record, outputBytes: 0 });
    }
    hub.on('connected', (nodeId) => this.sendQueued(nodeId));
    hub.on('disconnected', (nodeId) => this.loseRunning(nodeId));
  }

  /**
   * Creates and starts (or queues) a command on each node. Every command is recorded before any
   * is sent: when the disk refuses the records, this throws and nothing runs.
   */
  start(nodeIds: string[], spec: CommandSpec, by: Requester, options: { queueTtlMs?: number; batchId?: string | null } = {}): CommandView[] {
    const now = Date.now();
    const records = nodeIds.map((nodeId): CommandRecord => ({
      id: crypto.randomUUID(), batch_id: options.batchId ?? null, node_id: nodeId, user: by.username, userId: by.userId,
      source_ip: by.ip, command: displayCommand(spec), spec, status: 'queued', exit_code: null, signal: null, stdout: '',
      stderr: '', truncated: false, error: null, created_at: now, started_at: null, finished_at: null, duration_ms: null,
      expires_at: options.queueTtlMs ? now + options.queueTtlMs : null,
    }));
    this.repository.insertAll(records);
    return records.map((record) => {
      const { node_id: nodeId } = record;
      const entry: ActiveCommand = { record, outputBytes: 0 };
      this.active.set(record.id, entry);
      if (this.hub.isConnected(nodeId)) this.send(entry);
      else if (!options.queueTtlMs) this.finish(entry, { status: 'error', error: 'node is offline' });
      else this.emit('updated', withoutOutput(record));
      return { ...record };
    });
  }

  get(id: string): CommandView | undefined {
    return this.active.get(id)?.record ?? this.unstored.get(id) ?? this.repository.get(id);
  }

  /** Cancels a queued or running command; false when it already ended. */
  cancel(id: string): boolean {
    const entry = this.active.get(id);
    if (!entry) return false;
    if (entry.record.status === 'queued') {
      this.finish(entry, { status: 'cancelled' });
    } else if (!this.hub.sendTo(entry.record.node_id, { type: 'exec.cancel', data: { command_id: id } })) {
      this.finish(entry, { status: 'lost', error: 'the node went offline' });
    }
    return true;
  }

  onOutput(nodeId: string, { data }: ExecOutputMessage): void {
    const entry = this.active.get(data.command_id);
    if (!entry || entry.record.node_id !== nodeId) return;
    const room = this.limits.maxOutputBytes - entry.outputBytes;
    let text = data.data;
    if (Buffer.byteLength(text) > room) {
      text = Buffer.from(text).subarray(0, Math.max(0, room)).toString().replace(/\uFFFD$/, '');
      entry.record.truncated = true;
    }
    if (!text) return;
    entry.outputBytes += Buffer.byteLength(text);
    const offset = entry.record[data.stream].length;
    entry.record[data.stream] += text;
    this.emit('output', { command_id: data.command_id, node_id: nodeId, stream: data.stream, offset, data: text });
  }

  onResult(nodeId: string, { data }: ExecResultMessage): void {
    const entry = this.active.get(data.command_id);
    if (!entry || entry.record.node_id !== nodeId) return;
    let status: CommandStatus = data.exit_code === 0 ? 'succeeded' : 'failed';
    if (data.cancelled) status = 'cancelled';
    else if (data.timed_out) status = 'timed_out';
    else if (data.error && data.exit_code === null && data.signal === null) status = 'error';
    entry.record.truncated ||= data.truncated === true;
    this.finish(entry, {
      status, exit_code: data.exit_code, signal: data.signal, duration_ms: data.duration_ms, error: data.error ?? null,
    });
  }

  private send(entry: ActiveCommand): void {
    const { record } = entry;
    if (!this.hub.capabilities(record.node_id)?.includes('exec')) {
      return this.finish(entry, { status: 'error', error: 'the agent on this node cannot run commands (update it)' });
    }
    this.hub.sendTo(record.node_id, { type: 'exec.request', data: { command_id: record.id, ...record.spec, max_output_bytes: this.limits.maxOutputBytes } });
    record.status = 'running';
    record.started_at = Date.now();
    this.store(record);
    entry.watchdog = setTimeout(() => {
      const active = this.active.get(record.id);
      if (active) this.finish(active, { status: 'lost', error: 'no result from the agent after its timeout' });
    }, record.spec.timeout_s * 1000 + RESULT_GRACE_MS);
    entry.watchdog.unref();
    this.emit('updated', withoutOutput(record));
  }

  private sendQueued(nodeId: string): void {
    const now = Date.now();
    for (const entry of [...this.active.values()]) {
      if (entry.record.node_id !== nodeId || entry.record.status !== 'queued') continue;
      if (entry.record.expires_at !== null && entry.record.expires_at <= now) this.finish(entry, { status: 'expired', error: 'the node did not come online in time' });
      else this.send(entry);
    }
  }

  private loseRunning(nodeId: string): void {
    for (const entry of [...this.active.values()]) {
      if (entry.record.node_id === nodeId && entry.record.status === 'running') {
        this.finish(entry, { status: 'lost', error: 'the node disconnected while the command ran' });
      }
    }
  }

  /** Writes the command as it is when the write runs (now, or once the disk has room). */
  private store(record: CommandRecord): void {
    this.unstored.set(record.id, record);
    this.deferred.run(`command:${record.id}`, () => {
      this.repository.update(record);
      this.unstored.delete(record.id);
    });
  }

  private finish(entry: ActiveCommand, change: Partial<CommandView> & { status: CommandStatus }): void {
    const { record } = entry;
    if (FINAL_STATUSES.has(record.status)) return;
    clearTimeout(entry.watchdog);
    Object.assign(record, change);
    record.finished_at = Date.now();
    record.duration_ms ??= record.started_at === null ? null : record.finished_at - record.started_at;
    this.active.delete(record.id);
    this.store(record);
    this.log.info({ commandId: record.id, nodeId: record.node_id, status: record.status, exitCode: record.exit_code }, 'command ended');
    this.emit('updated', withoutOutput(record));
  }
}
