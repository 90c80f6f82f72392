import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode, type AlertConfigLiveMessage, type AlertMute, type AlertRule, type AlertRuleScope } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';
import { ApiError } from '../errors.js';
import type { AlertChannelsRepository, ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { AlertRulesRepository } from '../repositories/alert-rules-repository.js';
import type { AlertsRepository } from '../repositories/alerts-repository.js';
import { DEFAULT_REPEAT_S, DEFAULT_RULES, thresholdProblem } from './rule-kinds.js';

export type RuleInput = Pick<AlertRule, 'name' | 'kind'> & Partial<Pick<AlertRule, 'threshold' | 'for_s' | 'scope' | 'severity' | 'enabled' | 'repeat_s' | 'channels'>>;
export type RuleChange = Partial<Omit<AlertRule, 'id' | 'kind' | 'builtin' | 'created_at'>>;
export type ChannelInput = Omit<ChannelRecord, 'id' | 'createdAt'>;
/** A part of the configuration, read again as a whole when another replica changed it. */
export type ConfigPart = AlertConfigLiveMessage['data']['part'];
export type MuteInput = Pick<AlertMute, 'node_id' | 'demo' | 'device_id' | 'rule_id' | 'starts_at' | 'ends_at' | 'reason' | 'created_by'>;

/**
 * What the lab set up for alerts: rules (the defaults seeded on a fresh install), channels and
 * mutes, in memory and written through: memory changes once the database took the change (a
 * refused write is never shown). Announces changes so the engine re-evaluates ('rules', 'mutes'),
 * and each committed change of its own ('changed', so that other replicas reload() that part).
 */
export class AlertConfig extends EventEmitter<{ rules: []; mutes: []; changed: [ConfigPart] }> {
  private reloading: Promise<void> = Promise.resolve();

  private constructor(
    private readonly rulesRepo: AlertRulesRepository,
    private readonly channelsRepo: AlertChannelsRepository,
    private readonly alertsRepo: AlertsRepository,
    /** Runs a memory change once the transaction of the write commits (sql.afterCommit). */
    private readonly afterCommit: (fn: () => void) => void,
    private rules: AlertRule[],
    private channels: ChannelRecord[],
    private mutes: AlertMute[],
  ) {
    super();
  }

  /**
   * Reads what is set up, seeding the default rules on a fresh install: taking the "pending" mark
   * and seeding are one transaction, so replicas starting together seed once, and the others (held
   * by the mark's row lock until it commits) read the seeded rules.
   */
  static async load(
    rulesRepo: AlertRulesRepository, channelsRepo: AlertChannelsRepository, alertsRepo: AlertsRepository, sql: Pick<Sql, 'transaction' | 'afterCommit'>,
  ): Promise<AlertConfig> {
    await sql.transaction(async () => {
      if (await rulesRepo.takeDefaultsPending()) await seedDefaults(rulesRepo);
    });
    return new AlertConfig(rulesRepo, channelsRepo, alertsRepo, (fn) => sql.afterCommit(fn), await rulesRepo.all(), await channelsRepo.all(), await alertsRepo.mutes(Date.now()));
  }

  /** Reads a part again from the database (another replica changed it, or this one starts judging); one read at a time, in order. */
  reload(part: ConfigPart): Promise<void> {
    const read = this.reloading.then(() => this.read(part));
    this.reloading = read.catch(() => undefined);
    return read;
  }

  private async read(part: ConfigPart): Promise<void> {
    if (part === 'rules') {
      this.rules = await this.rulesRepo.all();
      this.emit('rules');
    } else if (part === 'channels') this.channels = await this.channelsRepo.all();
    else {
      this.mutes = await this.alertsRepo.mutes(Date.now());
      this.emit('mutes');
    }
  }

  async reloadAll(): Promise<void> {
    for (const part of ['channels', 'rules', 'mutes'] as const) await this.reload(part);
  }

  listRules(): AlertRule[] {
    return this.rules;
  }

  rule(id: string): AlertRule {
    const rule = this.rules.find((r) => r.id === id);
    if (!rule) throw new ApiError(404, ErrorCode.notFound, `no alert rule with id ${id}`);
    return rule;
  }

  async createRule(input: RuleInput): Promise<AlertRule> {
    const rule: AlertRule = {
      id: crypto.randomUUID(), name: input.name, kind: input.kind, threshold: input.threshold ?? null, for_s: input.for_s ?? 0,
      scope: input.scope ?? {}, severity: input.severity ?? 'warning', enabled: input.enabled ?? true,
      repeat_s: input.repeat_s === undefined ? DEFAULT_REPEAT_S : input.repeat_s, channels: input.channels ?? null, builtin: false, created_at: Date.now(),
    };
    this.check(rule);
    await this.rulesRepo.save(rule);
    this.afterCommit(() => {
      this.rules = [...this.rules, rule];
      this.emit('rules');
      this.emit('changed', 'rules');
    });
    return rule;
  }

  async updateRule(id: string, change: RuleChange): Promise<AlertRule> {
    const rule = { ...this.rule(id), ...change };
    this.check(rule);
    await this.rulesRepo.save(rule);
    this.afterCommit(() => {
      this.rules = this.rules.map((r) => (r.id === id ? rule : r));
      this.emit('rules');
      this.emit('changed', 'rules');
    });
    return rule;
  }

  async deleteRule(id: string): Promise<AlertRule> {
    const rule = this.rule(id);
    await this.rulesRepo.delete(id);
    this.afterCommit(() => {
      this.rules = this.rules.filter((r) => r.id !== id);
      this.emit('rules');
      this.emit('changed', 'rules');
    });
    return rule;
  }

  listChannels(): ChannelRecord[] {
    return this.channels;
  }

  channel(id: string): ChannelRecord {
    const channel = this.channels.find((c) => c.id === id);
    if (!channel) throw new ApiError(404, ErrorCode.notFound, `no channel with id ${id}`);
    return channel;
  }

  /** The enabled channels a rule notifies (null: all of them). */
  channelsOf(rule: AlertRule): ChannelRecord[] {
    return this.channels.filter((c) => c.enabled && (rule.channels === null || rule.channels.includes(c.id)));
  }

  async createChannel(input: ChannelInput): Promise<ChannelRecord> {
    const channel: ChannelRecord = { ...input, id: crypto.randomUUID(), createdAt: Date.now() };
    await this.channelsRepo.save(channel);
    this.afterCommit(() => {
      this.channels = [...this.channels, channel];
      this.emit('changed', 'channels');
    });
    return channel;
  }

  async updateChannel(id: string, change: Partial<ChannelInput>): Promise<ChannelRecord> {
    const channel = { ...this.channel(id), ...change };
    await this.channelsRepo.save(channel);
    this.afterCommit(() => {
      this.channels = this.channels.map((c) => (c.id === id ? channel : c));
      this.emit('changed', 'channels');
    });
    return channel;
  }

  async deleteChannel(id: string): Promise<ChannelRecord> {
    const channel = this.channel(id);
    await this.channelsRepo.delete(id);
    this.afterCommit(() => {
      this.channels = this.channels.filter((c) => c.id !== id);
      this.emit('changed', 'channels');
    });
    return channel;
  }

  /** Mutes that have not ended (past ones are forgotten here, kept in the database). */
  activeMutes(now = Date.now()): AlertMute[] {
    if (this.mutes.some((m) => m.ends_at <= now)) this.mutes = this.mutes.filter((m) => m.ends_at > now);
    return this.mutes;
  }

  async addMute(input: MuteInput): Promise<AlertMute> {
    if (input.ends_at <= input.starts_at) throw new ApiError(400, ErrorCode.badRequest, 'a mute must end after it starts');
    if (input.node_id === null && input.demo === null && input.device_id === null && input.rule_id === null) {
      throw new ApiError(400, ErrorCode.badRequest, 'a mute names a node, a demo, a device or a rule');
    }
    if (input.rule_id !== null) this.rule(input.rule_id);
    const mute: AlertMute = { ...input, id: crypto.randomUUID(), created_at: Date.now() };
    await this.alertsRepo.addMute(mute);
    this.afterCommit(() => {
      this.mutes = [...this.mutes, mute];
      this.emit('mutes');
      this.emit('changed', 'mutes');
    });
    return mute;
  }

  async deleteMute(id: string): Promise<AlertMute> {
    const mute = this.mutes.find((m) => m.id === id);
    if (!mute || !(await this.alertsRepo.deleteMute(id))) throw new ApiError(404, ErrorCode.notFound, `no active mute with id ${id}`);
    this.afterCommit(() => {
      this.mutes = this.mutes.filter((m) => m.id !== id);
      this.emit('mutes');
      this.emit('changed', 'mutes');
    });
    return mute;
  }

  private check(rule: AlertRule): void {
    const problem = thresholdProblem(rule.kind, rule.threshold);
    if (problem) throw new ApiError(400, ErrorCode.badRequest, problem);
    const unknown = (rule.channels ?? []).filter((id) => !this.channels.some((c) => c.id === id));
    if (unknown.length) throw new ApiError(400, ErrorCode.badRequest, `unknown channel ${unknown.join(', ')}`);
  }
}

/** The default rules of a fresh install, stored. */
async function seedDefaults(rulesRepo: AlertRulesRepository): Promise<AlertRule[]> {
  const now = Date.now();
  const rules = DEFAULT_RULES.map((d, i): AlertRule => {
    const scope: AlertRuleScope = {};
    return { ...d, id: crypto.randomUUID(), scope, enabled: true, repeat_s: DEFAULT_REPEAT_S, channels: null, builtin: true, created_at: now + i };
  });
  for (const rule of rules) await rulesRepo.save(rule);
  return rules;
}
