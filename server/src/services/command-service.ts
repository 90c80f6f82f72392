import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode, type CommandView, type ExecOutputMessage, type ExecResultMessage } from '@dvic/protocol';
import type { FastifyBaseLogger } from 'fastify';
import { ApiError } from '../errors.js';
import type { NodeLink } from '../hub/node-link.js';
import type { NodeRegistry } from '../live/node-registry.js';
import { writeNow, type WriteScheduler } from './deferred-writes.js';
import type { CommandQuery, CommandRecord, CommandSpec, CommandsRepository } from '../repositories/commands-repository.js';
import { isFinalStatus, type CommandStatus } from '@dvic/protocol';

export interface CommandServiceEvents {
  updated: [CommandView];
  output: [{ command_id: string; node_id: string; stream: 'stdout' | 'stderr'; offset: number; data: string }];
}

export interface Requester {
  userId: number | null;
  username: string;
  ip: string | null;
}

/** What to run, as a client asks: a shell string or an argv, and how long it may take or wait. */
export type CommandRequest = Omit<CommandSpec, 'timeout_s'> & { timeout_s?: number; queue_ttl_s?: number };

/** Which nodes to run on: by ids or names, by label ("key=value"), or every online node. */
export interface Targets {
  nodes?: string[];
  label?: string;
  all?: boolean;
}

export interface CommandLimits {
  maxOutputBytes: number;
  defaultTimeoutS: number;
  maxTimeoutS: number;
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
 * Runs commands on nodes: resolves targets, sends exec.request, collects streamed output up to a
 * cap, records the result, and makes sure every command ends: an agent that drops mid-command
 * makes it "lost", a queued one past its expiry becomes "expired".
 */
export class CommandService extends EventEmitter<CommandServiceEvents> {
  private readonly active = new Map<string, ActiveCommand>();
  /** Ended commands whose last state waits for the disk: shown from here until it is stored. */
  /** Commands ended whose last write is not stored yet; one entry object per write (see store). */
  private readonly unstored = new Map<string, { record: CommandRecord }>();

  constructor(
    private readonly repository: CommandsRepository,
    private readonly hub: NodeLink,
    private readonly registry: NodeRegistry,
    private readonly limits: CommandLimits,
    private readonly log: FastifyBaseLogger,
    private readonly deferred: WriteScheduler = writeNow,
  ) {
    super();
    hub.on('connected', (nodeId) => this.sendQueued(nodeId));
    hub.on('disconnected', (nodeId) => this.loseRunning(nodeId));
    hub.on('exec.output', (nodeId, message) => this.onOutput(nodeId, message));
    hub.on('exec.result', (nodeId, message) => this.onResult(nodeId, message));
  }

  /**
   * At start, before agents connect: the commands a previous process left queued wait on; running
   * ones are lost. owner: only that replica's (a lab on a shared database: the others' are theirs).
   */
  async resume(owner?: string): Promise<void> {
    for (const record of await this.repository.unfinished(owner)) {
      // The server restarted: a running command's result cannot arrive any more; a queued one waits on.
      if (record.status === 'running') this.finish({ record, outputBytes: 0 }, { status: 'lost', error: 'the server restarted while it ran' });
      else this.active.set(record.id, { record, outputBytes: 0 });
    }
  }

  /** The replicas that own queued or running commands (the leader ends those of a gone one). */
  unfinishedOwners(): Promise<string[]> {
    return this.repository.unfinishedOwners();
  }

  /** Ends the queued and running commands of a replica that is gone: they ran in its memory. Returns how many. */
  endOwnedBy(owner: string): Promise<number> {
    return this.repository.loseOwnedBy(owner, `the server replica that ran it (${owner || 'before replicas were recorded'}) stopped`);
  }

  /** Runs a command on one node (by id, name or id prefix); an offline node is an error unless queue_ttl_s is given. */
  async runOn(nodeRef: string, request: CommandRequest, by: Requester): Promise<CommandView> {
    const node = this.registry.resolve(nodeRef);
    const { spec, queueTtlMs } = this.specOf(request);
    if (!queueTtlMs && !this.hub.isConnected(node.id)) {
      throw new ApiError(409, ErrorCode.nodeOffline, `node "${node.name}" is offline (add queue_ttl_s to run it when it comes back)`);
    }
    return (await this.start([node.id], spec, by, { queueTtlMs }))[0]!;
  }

  /** Runs a command on every node the targets name; returns the batch id and the commands. */
  async fanOut(targets: Targets, request: CommandRequest, by: Requester): Promise<{ batch_id: string; commands: CommandView[] }> {
    const { spec, queueTtlMs } = this.specOf(request);
    const nodeIds = this.resolveTargets(targets);
    const batchId = crypto.randomUUID();
    return { batch_id: batchId, commands: (await this.start(nodeIds, spec, by, { batchId, queueTtlMs })).map(withoutOutput) };
  }

  resolveTargets(targets: Targets): string[] {
    const ids = new Set<string>();
    for (const ref of targets.nodes ?? []) ids.add(this.registry.resolve(ref).id);
    if (targets.label) {
      const at = targets.label.indexOf('=');
      const [key, value] = [targets.label.slice(0, at), targets.label.slice(at + 1)];
      for (const n of this.registry.list()) if (n.labels[key] === value && n.status !== 'revoked') ids.add(n.id);
    }
    if (targets.all) for (const n of this.registry.list()) if (n.status === 'online') ids.add(n.id);
    if (ids.size === 0) throw new ApiError(400, ErrorCode.badRequest, 'no node matches these targets');
    return [...ids];
  }

  /** Command history, newest first, without output (a running command shows its live status). */
  async search(query: Omit<CommandQuery, 'nodeId'> & { node?: string }): Promise<{ commands: CommandView[]; more: boolean }> {
    const nodeId = query.node === undefined ? undefined : this.registry.resolve(query.node).id;
    const page = await this.repository.search({ ...query, nodeId });
    return { commands: page.commands.map((c) => withoutOutput(this.inMemory(c.id) ?? c)), more: page.more };
  }

  async get(id: string): Promise<CommandView | undefined> {
    return this.inMemory(id) ?? this.repository.get(id);
  }

  /** A command whose latest state is in memory: running or queued, or ended and waiting for the disk. */
  private inMemory(id: string): CommandView | undefined {
    return this.active.get(id)?.record ?? this.unstored.get(id)?.record;
  }

  /**
   * Cancels a queued or running command: its whole process group is killed. Nothing happens before
   * the transaction (and its audit entry) commits; the answer is the command as it then becomes.
   */
  async cancel(id: string): Promise<CommandView> {
    const command = await this.get(id);
    if (!command) throw new ApiError(404, ErrorCode.notFound, `command ${id} not found`);
    const entry = this.active.get(id);
    if (!entry) throw new ApiError(409, ErrorCode.conflict, `command already ended (${command.status})`);
    const queued = entry.record.status === 'queued';
    this.repository.afterCommit(() => {
      if (queued) this.finish(entry, { status: 'cancelled' });
      else if (!this.hub.sendTo(entry.record.node_id, { type: 'exec.cancel', data: { command_id: id } })) {
        this.finish(entry, { status: 'lost', error: 'the node went offline' });
      }
    });
    return queued ? { ...entry.record, status: 'cancelled' } : { ...entry.record };
  }

  private specOf(request: CommandRequest): { spec: CommandSpec; queueTtlMs: number | undefined } {
    if ((request.command === undefined) === (request.argv === undefined)) {
      throw new ApiError(400, ErrorCode.badRequest, 'give either "command" (a shell string) or "argv" (a list), not both');
    }
    const timeout = request.timeout_s ?? this.limits.defaultTimeoutS;
    if (timeout > this.limits.maxTimeoutS) throw new ApiError(400, ErrorCode.badRequest, `timeout_s is over the maximum of ${this.limits.maxTimeoutS} s`);
    const { queue_ttl_s: queueTtlS, ...spec } = request;
    return { spec: { ...spec, timeout_s: timeout }, queueTtlMs: queueTtlS ? queueTtlS * 1000 : undefined };
  }

  /** Creates and starts (or queues) a command on each node; nothing is sent before the records are committed. */
  private async start(nodeIds: string[], spec: CommandSpec, by: Requester, options: { queueTtlMs?: number; batchId?: string }): Promise<CommandView[]> {
    const now = Date.now();
    const records = nodeIds.map((nodeId): CommandRecord => ({
      id: crypto.randomUUID(), batch_id: options.batchId ?? null, node_id: nodeId, user: by.username, userId: by.userId,
      source_ip: by.ip, command: displayCommand(spec), spec, status: 'queued', exit_code: null, signal: null, stdout: '',
      stderr: '', truncated: false, error: null, created_at: now, started_at: null, finished_at: null, duration_ms: null,
      expires_at: options.queueTtlMs ? now + options.queueTtlMs : null,
    }));
    await this.repository.insert(records);
    this.repository.afterCommit(() => {
      for (const record of records) this.launch({ record, outputBytes: 0 }, options.queueTtlMs);
    });
    return records.map((record) => ({ ...record }));
  }

  private launch(entry: ActiveCommand, queueTtlMs: number | undefined): void {
    this.active.set(entry.record.id, entry);
    if (this.hub.isConnected(entry.record.node_id)) this.send(entry);
    else if (!queueTtlMs) this.finish(entry, { status: 'error', error: 'node is offline' });
    else this.emit('updated', withoutOutput(entry.record));
  }

  private onOutput(nodeId: string, { data }: ExecOutputMessage): void {
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

  private onResult(nodeId: string, { data }: ExecResultMessage): void {
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
    const request = { type: 'exec.request', data: { command_id: record.id, ...record.spec, max_output_bytes: this.limits.maxOutputBytes } };
    if (!this.hub.sendTo(record.node_id, request)) {
      return this.finish(entry, { status: 'error', error: 'the command could not be sent: the node went offline, or it is larger than its agent accepts' });
    }
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
    const pending = { record };
    this.unstored.set(record.id, pending);
    this.deferred.run(`command:${record.id}`, async () => {
      await this.repository.update(record);
      // A later write of the command may still be queued: only the last stored one forgets it.
      if (this.unstored.get(record.id) === pending) this.unstored.delete(record.id);
    }).catch((err: unknown) => this.log.error({ err, commandId: record.id }, 'the command could not be stored'));
  }

  private finish(entry: ActiveCommand, change: Partial<CommandView> & { status: CommandStatus }): void {
    const { record } = entry;
    if (isFinalStatus(record.status)) return;
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
