import { Type } from 'typebox';

/** Which nodes a fan-out names ("as exec"): the same for commands, agent updates and deployments. */
export const TargetsSchema = Type.Object({
  nodes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10_000, description: 'Node ids, names or id prefixes' })),
  label: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,63}=.{0,256}$', description: 'key=value: every node with this label' })),
  all: Type.Optional(Type.Boolean({ description: 'Every online node' })),
}, { additionalProperties: false });
