import type { FastifyInstance } from 'fastify';
import { Type, type TUnsafe } from 'typebox';
import {
  bundledSchema, type AgentConfigFile, type AgentRelease, type AgentUpdateView, type ApiTokenView, type EnrollmentTokenView, type ArtifactView, type DeploymentView, type EnrollmentView, type AuditEntryView, type CommandView, type DemoView, type ErrorBody, type LabDemo, type DemoSchedule, type DemoExpectation, type DemoActions,
  type LogRecordView, type Alert, type AlertRule, type AlertRuleScope, type AlertMute, type AlertDelivery, type Channel, type ChannelEmail, type MetricSeries, type NodeDetailView, type DeviceView, type DeviceDetailView, type DevicePingView, type DeviceKeepalive, type NodeView, type ServerStats, type UserView,
} from '@dvic/protocol';

/**
 * The REST payloads, from protocol/schemas/api (their single source): registered once under a
 * short $id, which names them in the OpenAPI document, and referenced by every route schema.
 */
const API_SCHEMAS = {
  Node: 'api/node.json',
  NodeDetail: 'api/node-detail.json',
  Demo: 'api/demo.json',
  LabDemo: 'api/lab-demo.json',
  DemoSchedule: 'api/demo-schedule.json',
  DemoExpectation: 'api/demo-expectation.json',
  DemoActions: 'api/demo-actions.json',
  LogRecord: 'api/log-record.json',
  Command: 'api/command.json',
  AuditEntry: 'api/audit-entry.json',
  ApiToken: 'api/token.json',
  User: 'api/user.json',
  ErrorBody: 'api/error.json',
  ServerStats: 'api/server-stats.json',
  AgentConfigFile: 'api/agent-config-file.json',
  Device: 'api/device.json',
  DeviceDetail: 'api/device-detail.json',
  DevicePing: 'api/device-ping.json',
  DeviceKeepalive: 'api/device-keepalive.json',
  MetricSeries: 'api/metric-series.json',
  Enrollment: 'api/enrollment.json',
  EnrollmentToken: 'api/enrollment-token.json',
  Artifact: 'api/artifact.json',
  Deployment: 'api/deployment.json',
  AlertRuleScope: 'api/alert-rule-scope.json',
  AlertRule: 'api/alert-rule.json',
  AlertSubject: 'api/alert-subject.json',
  Alert: 'api/alert.json',
  AlertMute: 'api/alert-mute.json',
  AlertDelivery: 'api/alert-delivery.json',
  ChannelEmail: 'api/channel-email.json',
  Channel: 'api/channel.json',
  AlertWebhook: 'api/alert-webhook.json',
  AgentUpdate: 'api/agent-update.json',
  AgentRelease: 'api/agent-release.json',
} as const;

export function registerProtocolSchemas(app: FastifyInstance): void {
  for (const [id, file] of Object.entries(API_SCHEMAS)) app.addSchema({ ...bundledSchema(file), $id: id });
}

const ref = <T>(id: keyof typeof API_SCHEMAS): TUnsafe<T> => Type.Unsafe<T>({ $ref: `${id}#` });

export const NodeRef = ref<NodeView>('Node');
export const NodeDetailRef = ref<NodeDetailView>('NodeDetail');
export const DemoRef = ref<DemoView>('Demo');
export const LabDemoRef = ref<LabDemo>('LabDemo');
export const ScheduleRef = ref<DemoSchedule>('DemoSchedule');
export const DemoExpectationRef = ref<DemoExpectation>('DemoExpectation');
export const DemoActionsRef = ref<DemoActions>('DemoActions');
export const LogRecordRef = ref<LogRecordView>('LogRecord');
export const CommandRef = ref<CommandView>('Command');
export const AuditEntryRef = ref<AuditEntryView>('AuditEntry');
export const ApiTokenRef = ref<ApiTokenView>('ApiToken');
export const UserRef = ref<UserView>('User');
export const ErrorRef = ref<ErrorBody>('ErrorBody');
export const ServerStatsRef = ref<ServerStats>('ServerStats');
export const AgentConfigFileRef = ref<AgentConfigFile>('AgentConfigFile');
export const DeviceRef = ref<DeviceView>('Device');
export const DeviceDetailRef = ref<DeviceDetailView>('DeviceDetail');
export const DevicePingRef = ref<DevicePingView>('DevicePing');
export const DeviceKeepaliveRef = ref<DeviceKeepalive>('DeviceKeepalive');
export const MetricSeriesRef = ref<MetricSeries>('MetricSeries');
export const EnrollmentRef = ref<EnrollmentView>('Enrollment');
export const EnrollmentTokenRef = ref<EnrollmentTokenView>('EnrollmentToken');
export const ArtifactRef = ref<ArtifactView>('Artifact');
export const DeploymentRef = ref<DeploymentView>('Deployment');
export const AlertRef = ref<Alert>('Alert');
export const AlertRuleRef = ref<AlertRule>('AlertRule');
export const AlertRuleScopeRef = ref<AlertRuleScope>('AlertRuleScope');
export const AlertMuteRef = ref<AlertMute>('AlertMute');
export const AlertDeliveryRef = ref<AlertDelivery>('AlertDelivery');
export const ChannelRef = ref<Channel>('Channel');
export const ChannelEmailRef = ref<ChannelEmail>('ChannelEmail');
export const AgentUpdateRef = ref<AgentUpdateView>('AgentUpdate');
export const AgentReleaseRef = ref<AgentRelease>('AgentRelease');
