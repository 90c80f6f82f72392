import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { liveTable, messageTable, schemas } from './generated/schemas.js';

export type Direction = 'agent-to-server' | 'server-to-agent' | 'client-to-server' | 'server-to-client';
export type MessageType = keyof typeof messageTable;
export type LiveType = keyof typeof liveTable;

export type ValidationResult =
  | { ok: true; type: string }
  | { ok: false; code: 'invalid_json' | 'invalid_message' | 'unknown_type'; type?: string; message: string };

const ENVELOPE_ID = 'https://dvic.devinci.fr/protocol/v1/envelope.json';

/**
 * One validator per message type, plus the envelope, each compiled by Ajv the first time it is
 * needed: compiling all of them took most of a second of every server start, and a process uses
 * few (protocol/test/validator.test.ts compiles every one).
 */
export class ProtocolValidator {
  private readonly ajv = new Ajv2020({ allErrors: false, strict: true, strictRequired: false });
  private readonly byType = new Map<string, { id: string; direction?: string }>();

  constructor() {
    this.ajv.addVocabulary(['x-direction', 'x-implemented-by']);
    for (const schema of schemas) this.ajv.addSchema(schema as object);
    const tables: Record<string, { id: string; direction?: string }> = { ...messageTable, ...liveTable };
    for (const [type, entry] of Object.entries(tables)) this.byType.set(type, entry);
  }

  /** The compiled schema of this $id (Ajv compiles it once, on the first call). */
  private compiled(schemaId: string): ValidateFunction {
    const validate = this.ajv.getSchema(schemaId);
    if (!validate) throw new Error(`unknown protocol schema ${schemaId}`);
    return validate;
  }

  /**
   * Checks a parsed message: envelope first, then the schema its type names. When a direction is
   * given, a type that may not travel that way is reported as unknown.
   */
  validate(message: unknown, direction?: Direction): ValidationResult {
    const envelope = this.compiled(ENVELOPE_ID);
    if (!envelope(message)) {
      return { ok: false, code: 'invalid_message', message: `envelope: ${describe(envelope.errors)}` };
    }
    const type = (message as { type: string }).type;
    const entry = this.byType.get(type);
    const allowed = entry && (!direction || entry.direction === direction || entry.direction === 'both');
    if (!entry || !allowed) {
      return { ok: false, code: 'unknown_type', type, message: `unknown message type "${type}"` };
    }
    const validateType = this.compiled(entry.id);
    if (!validateType(message)) {
      return { ok: false, code: 'invalid_message', type, message: `${type}: ${describe(validateType.errors)}` };
    }
    return { ok: true, type };
  }

  /** Checks a value against any protocol schema by $id (e.g. the log file header); null when it matches. */
  check(schemaId: string, value: unknown): string | null {
    const validate = this.compiled(schemaId);
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
