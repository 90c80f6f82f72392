import { Type } from 'typebox';
import { bundledSchema, type AgentConfig } from '@dvic/protocol';

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
