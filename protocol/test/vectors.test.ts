import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { authMessage, decodeBinaryFrame, encodeBinaryFrame, messageTable, ProtocolValidator, schemas, type BinaryOpcode } from '../src/index.js';

const vectorsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'vectors');
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(vectorsDir, file), 'utf8'));

interface VectorFile { schema: string; type?: string; tests: { description: string; data: unknown; valid: boolean }[] }

const validator = new ProtocolValidator();
const messageFiles = fs.readdirSync(path.join(vectorsDir, 'messages')).sort();

describe('protocol schemas', () => {
  // The validator compiles a schema on its first use: a schema Ajv refuses (strict mode) must still fail here, not in production.
  it('every one compiles', () => {
    const ids = schemas.map((schema) => (schema as { $id: string }).$id);
    expect(ids.length).toBeGreaterThan(50);
    for (const id of ids) expect(() => validator.check(id, null), id).not.toThrow();
  });
});

describe('message vectors', () => {
  it('cover every message type with a valid and an invalid example', () => {
    expect(messageFiles.map((f) => f.replace(/\.json$/, '')).sort()).toEqual(Object.keys(messageTable).sort());
    for (const file of messageFiles) {
      const vectors: VectorFile = readJson(`messages/${file}`);
      expect(vectors.tests.some((t) => t.valid), file).toBe(true);
      expect(vectors.tests.some((t) => !t.valid), file).toBe(true);
    }
  });

  for (const file of messageFiles) {
    const vectors: VectorFile = readJson(`messages/${file}`);
    for (const test of vectors.tests) {
      it(`${vectors.type}: ${test.description} is ${test.valid ? 'accepted' : 'refused'}`, () => {
        expect(validator.validate(test.data).ok).toBe(test.valid);
      });
    }
  }

  const envelope: VectorFile = readJson('envelope.json');
  for (const test of envelope.tests) {
    it(`envelope: ${test.description} is refused`, () => {
      expect(validator.validate(test.data).ok).toBe(test.valid);
    });
  }

  it('refuses a server-to-agent message sent by an agent', () => {
    const result = validator.validate({ type: 'exec.request', data: { command_id: 'c', command: 'id' } }, 'agent-to-server');
    expect(result).toMatchObject({ ok: false, code: 'unknown_type' });
  });
});

describe('log file header vectors', () => {
  const { schema, tests } = readJson('logs/header.json') as VectorFile;
  for (const test of tests) {
    it(`${test.description} is ${test.valid ? 'accepted' : 'refused'}`, () => {
      expect(validator.check(schema, test.data) === null).toBe(test.valid);
    });
  }
});

describe('binary frame vectors', () => {
  const { tests } = readJson('binary-frames.json') as {
    tests: { description: string; hex: string; decoded: null | { opcode: number; channel: number; payload_hex: string } }[];
  };
  for (const test of tests) {
    it(test.description, () => {
      const decoded = decodeBinaryFrame(Buffer.from(test.hex, 'hex'));
      if (test.decoded === null) {
        expect(decoded).toBeNull();
        return;
      }
      expect(decoded).toMatchObject({ opcode: test.decoded.opcode, channel: test.decoded.channel });
      expect(decoded!.payload.toString('hex')).toBe(test.decoded.payload_hex);
      const encoded = encodeBinaryFrame(test.decoded.opcode as BinaryOpcode, test.decoded.channel, Buffer.from(test.decoded.payload_hex, 'hex'));
      expect(encoded.toString('hex')).toBe(test.hex);
    });
  }
});

describe('auth signature vector', () => {
  const v = readJson('auth-signature.json');
  const privateKey = crypto.createPrivateKey({
    key: Buffer.from(v.pkcs8_der_prefix_hex + v.private_key_seed_hex, 'hex'), format: 'der', type: 'pkcs8',
  });

  it('builds the signed message from nonce and node id', () => {
    expect(authMessage(v.nonce, v.node_id)).toBe(v.signed_message);
  });

  it('signs deterministically to the recorded signature', () => {
    expect(crypto.sign(null, Buffer.from(v.signed_message), privateKey).toString('base64')).toBe(v.signature_base64);
  });

  for (const test of v.tests as { description: string; signed_message: string; valid: boolean }[]) {
    it(test.description, () => {
      const ok = crypto.verify(null, Buffer.from(test.signed_message), v.public_key_pem, Buffer.from(v.signature_base64, 'base64'));
      expect(ok).toBe(test.valid);
    });
  }
});
