import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ErrorCode, type AlertMute, type AlertRule, type AlertRuleScope } from '@dvic/protocol';
import { ApiError } from '../errors.js';
import type { AlertChannelsRepository, ChannelRecord } from '../repositories/alert-channels-repository.js';
import type { AlertRulesRepository } from '../repositories/alert-rules-repository.js';
import type { AlertsRepository } from '../repositories/alerts-repository.js';
import { DEFAULT_REPEAT_S, DEFAULT_RULES, thresholdProblem } from './rule-kinds.js';

export type RuleInput = Pick<AlertRule, 'name' | 'kind'> & Partial<Pick<AlertRule, 'threshold' | 'for_s' | 'scope' | 'severity' | 'enabled' | 'repeat_s' | 'channels'>>;
export type RuleChange = Partial<Omit<AlertRule, 'id' | 'kind' | 'builtin' | 'created_at'>>;
export type ChannelInput = Omit<ChannelRecord, 'id' | 'createdAt'>;
export type MuteInput = Pick<AlertMute, 'node_id' | 'demo' | 'device_id' | 'rule_id' | 'starts_at' | 'ends_at' | 'reason' | 'created_by'>;

/**
 * What the lab set up for alerts: rules (the defaults seeded on a fresh install), channels and
 * mutes, in memory and written through. Announces changes so the engine re-evaluates.
 */
export class AlertConfig extends EventEmitter<{ rules: []; mutes: [] }> {
  private rules: AlertRule[];
  private channels: ChannelRecord[];
  private mutes: AlertMute[];

  constructor(
    private readonly rulesRepo: AlertRulesRepository,
    private readonly channelsRepo: AlertChannelsRepository,
    private readonly alertsRepo: AlertsRepository,
  ) {
    super();
    this.rules = rulesRepo.all();
    if (rulesRepo.takeDefaultsPending()) this.seedDefaults();
    this.channels = channelsRepo.all();
    this.mutes = alertsRepo.mutes(Date.now());
  }

  listRules(): AlertRule[] {
    return this.rules;
  }

  rule(id: string): AlertRule {
    const rule = this.rules.find((r) => r.id === id);
    if (!rule) throw new ApiError(404, ErrorCode.notFound, `no alert rule with id ${id}`);
    return rule;
  }

  createRule(input: RuleInput): AlertRule {
    const rule: AlertRule = {
      id: crypto.randomUUID(), name: input.name, kind: input.kind, threshold: input.threshold ?? null, for_s: input.for_s ?? 0,
      scope: input.scope ?? {}, severity: input.severity ?? 'warning', enabled: input.enabled ?? true,
      repeat_s: input.repeat_s === undefined ? DEFAULT_REPEAT_S : input.repeat_s, channels: input.channels ?? null, builtin: false, created_at: Date.now(),
    };
    this.check(rule);
    this.rulesRepo.save(rule);
    this.rules = [...this.rules, rule];
    this.emit('rules');
    return rule;
  }

  updateRule(id: string, change: RuleChange): AlertRule {
    const rule = { ...this.rule(id), ...change };
    this.check(rule);
    this.rulesRepo.save(rule);
    this.rules = this.rules.map((r) => (r.id === id ? rule : r));
    this.emit('rules');
    return rule;
  }

  deleteRule(id: string): AlertRule {
    const rule = this.rule(id);
    this.rulesRepo.delete(id);
    this.rules = this.rules.filter((r) => r.id !== id);
    this.emit('rules');
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

  createChannel(input: ChannelInput): ChannelRecord {
    const channel: ChannelRecord = { ...input, id: crypto.randomUUID(), createdAt: Date.now() };
    this.channelsRepo.save(channel);
    this.channels = [...this.channels, channel];
    return channel;
  }

  updateChannel(id: string, change: Partial<ChannelInput>): ChannelRecord {
    const channel = { ...this.channel(id), ...change };
    this.channelsRepo.save(channel);
    this.channels = this.channels.map((c) => (c.id === id ? channel : c));
    return channel;
  }

  deleteChannel(id: string): ChannelRecord {
    const channel = this.channel(id);
    this.channelsRepo.delete(id);
    this.channels = this.channels.filter((c) => c.id !== id);
    return channel;
  }

  /** Mutes that have not ended (past ones are forgotten here, kept in the database). */
  activeMutes(now = Date.now()): AlertMute[] {
    if (this.mutes.some((m) => m.ends_at <= now)) this.mutes = this.mutes.filter((m) => m.ends_at > now);
    return this.mutes;
  }

  addMute(input: MuteInput): AlertMute {
    if (input.ends_at <= input.starts_at) throw new ApiError(400, ErrorCode.badRequest, 'a mute must end after it starts');
    if (input.node_id === null && input.demo === null && input.device_id === null && input.rule_id === null) {
      throw new ApiError(400, ErrorCode.badRequest, 'a mute names a node, a demo, a device or a rule');
    }
    if (input.rule_id !== null) this.rule(input.rule_id);
    const mute: AlertMute = { ...input, id: crypto.randomUUID(), created_at: Date.now() };
    this.alertsRepo.addMute(mute);
    this.mutes = [...this.mutes, mute];
    this.emit('mutes');
    return mute;
  }

  deleteMute(id: string): AlertMute {
    const mute = this.mutes.find((m) => m.id === id);
    if (!mute || !this.alertsRepo.deleteMute(id)) throw new ApiError(404, ErrorCode.notFound, `no active mute with id ${id}`);
    this.mutes = this.mutes.filter((m) => m.id !== id);
    this.emit('mutes');
    return mute;
  }

  private check(rule: AlertRule): void {
    const problem = thresholdProblem(rule.kind, rule.threshold);
    if (problem) throw new ApiError(400, ErrorCode.badRequest, problem);
    const unknown = (rule.channels ?? []).filter((id) => !this.channels.some((c) => c.id === id));
    if (unknown.length) throw new ApiError(400, ErrorCode.badRequest, `unknown channel ${unknown.join(', ')}`);
  }

  private seedDefaults(): void {
    const now = Date.now();
    for (const [i, d] of DEFAULT_RULES.entries()) {
      const scope: AlertRuleScope = {};
      const rule: AlertRule = { ...d, id: crypto.randomUUID(), scope, enabled: true, repeat_s: DEFAULT_REPEAT_S, channels: null, builtin: true, created_at: now + i };
      this.rulesRepo.save(rule);
      this.rules.push(rule);
    }
  }
}
