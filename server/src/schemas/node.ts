import { Type } from 'typebox';
import { bundledSchema, type AgentConfig, type HardwareState, type HostFacts } from '@dvic/protocol';
import { EpochMs, NullableEpochMs } from './common.js';

const HostFactsSchema = Type.Unsafe<HostFacts>(bundledSchema('common.json', '/$defs/hostFacts'));
const HardwareSchema = Type.Unsafe<HardwareState>(bundledSchema('messages/hardware.state.json', '/properties/data'));
export const AgentConfigSchema = Type.Unsafe<AgentConfig>({
  ...bundledSchema('messages/config.push.json', '/properties/data'), additionalProperties: false,
});

export const Labels = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,63}$' }), Type.String({ maxLength: 256 }), {
  additionalProperties: false,
  description: 'Free-form key/value labels, e.g. {"room": "hall-b", "kind": "pi"}',
});

export const NodeName = Type.String({
  minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
  description: 'Unique name: letters, digits, dot, dash, underscore',
});

export const NodeView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  labels: Labels,
  agent_config: AgentConfigSchema,
  status: Type.Union([Type.Literal('online'), Type.Literal('offline'), Type.Literal('revoked')]),
  status_since: EpochMs,
  last_seen: NullableEpochMs,
  agent_version: Type.Union([Type.String(), Type.Null()]),
  is_local: Type.Boolean({ description: 'The machine the server runs on' }),
  created_at: EpochMs,
  revoked_at: NullableEpochMs,
  host: Type.Union([HostFactsSchema, Type.Null()]),
  hardware: Type.Union([HardwareSchema, Type.Null()], { description: 'Latest hardware.state payload (protocol/schemas/messages/hardware.state.json)' }),
  hardware_at: NullableEpochMs,
  demo_summary: Type.Object({ total: Type.Integer(), alive: Type.Integer() }, { description: 'Demo processes known on this node' }),
}, { $id: 'Node' });

export const DemoView = Type.Unsafe<import('../repositories/demos-repository.js').DemoView>({
  ...bundledSchema('common.json', '/$defs/demoView'), $id: 'Demo',
});
export const DemoRef = Type.Unsafe<import('../repositories/demos-repository.js').DemoView>({ $ref: 'Demo#' });

export const NodeDetailRef = Type.Unsafe<import('typebox').Static<typeof NodeView> & { demos: import('../repositories/demos-repository.js').DemoView[] }>({
  allOf: [{ $ref: 'Node#' }, { type: 'object', required: ['demos'], properties: { demos: { type: 'array', items: { $ref: 'Demo#' } } } }],
});

export const NodeRef = Type.Unsafe<import('typebox').Static<typeof NodeView>>({ $ref: 'Node#' });

export const AgentConfigFile = Type.Object({
  server_url: Type.String({ description: 'WebSocket URL of /api/v1/agent as the node should reach it' }),
  node_id: Type.String(),
  private_key: Type.String({ description: 'PKCS#8 PEM. Shown once: the server keeps only the public key.' }),
  metrics_interval_s: Type.Number(),
}, { description: 'Contents of the agent config file (/etc/dvic/agent.json, mode 0600)' });
