import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { liveTable, messageTable, schemas } from './generated/schemas.js';

export type Direction = 'agent-to-server' | 'server-to-agent' | 'client-to-server' | 'server-to-client';
export type MessageType = keyof typeof messageTable;
export type LiveType = keyof typeof liveTable;

export type ValidationResult =
  | { ok: true; type: string }
  | { ok: false; code: 'invalid_json' | 'invalid_message' | 'unknown_type'; type?: string; message: string };

const ENVELOPE_ID = 'https://dvic.devinci.fr/protocol/v1/envelope.json';

/** One compiled validator per message type, plus the envelope. */
export class ProtocolValidator {
  private readonly ajv = new Ajv2020({ allErrors: false, strict: true, strictRequired: false });
  private readonly envelope: ValidateFunction;
  private readonly byType = new Map<string, { validate: ValidateFunction; direction?: string }>();

  constructor() {
    this.ajv.addVocabulary(['x-direction', 'x-implemented-by']);
    for (const schema of schemas) this.ajv.addSchema(schema as object);
    this.envelope = this.ajv.getSchema(ENVELOPE_ID)!;
    const tables: Record<string, { id: string; direction?: string }> = { ...messageTable, ...liveTable };
    for (const [type, entry] of Object.entries(tables)) {
      this.byType.set(type, { validate: this.ajv.getSchema(entry.id)!, direction: entry.direction });
    }
  }

  /**
   * Checks a parsed message: envelope first, then the schema its type names. When a direction is
   * given, a type that may not travel that way is reported as unknown.
   */
  validate(message: unknown, direction?: Direction): ValidationResult {
    if (!this.envelope(message)) {
      return { ok: false, code: 'invalid_message', message: `envelope: ${describe(this.envelope.errors)}` };
    }
    const type = (message as { type: string }).type;
    const entry = this.byType.get(type);
    const allowed = entry && (!direction || entry.direction === direction || entry.direction === 'both');
    if (!entry || !allowed) {
      return { ok: false, code: 'unknown_type', type, message: `unknown message type "${type}"` };
    }
    if (!entry.validate(message)) {
      return { ok: false, code: 'invalid_message', type, message: `${type}: ${describe(entry.validate.errors)}` };
    }
    return { ok: true, type };
  }

  /** Checks a value against any protocol schema by $id (e.g. the log file header); null when it matches. */
  check(schemaId: string, value: unknown): string | null {
    const validate = this.ajv.getSchema(schemaId);
    if (!validate) throw new Error(`unknown protocol schema ${schemaId}`);
    return validate(value) ? null : describe(validate.errors);
  }

  /** Parses and validates a text frame. */
  parse(text: string, direction?: Direction): { result: ValidationResult; message?: unknown } {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (err) {
      return { result: { ok: false, code: 'invalid_json', message: `invalid JSON: ${(err as Error).message}` } };
    }
    return { result: this.validate(message, direction), message };
  }
}

function describe(errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (!first) return 'invalid';
  return `${first.instancePath || '/'} ${first.message ?? 'is invalid'}`;
}
