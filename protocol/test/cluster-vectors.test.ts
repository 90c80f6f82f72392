import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ProtocolValidator } from '../src/index.js';

// The shapes replicas exchange over NATS (protocol/schemas/cluster), checked on shared examples.
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'vectors', 'cluster');
const schemasDir = path.join(path.dirname(dir), '..', 'schemas', 'cluster');
const validator = new ProtocolValidator();

interface VectorFile { schema: string; tests: { description: string; data: unknown; valid: boolean }[] }

describe('cluster message vectors', () => {
  it('cover every cluster schema with a valid and an invalid example', () => {
    expect(fs.readdirSync(dir).sort()).toEqual(fs.readdirSync(schemasDir).sort());
    for (const file of fs.readdirSync(dir)) {
      const { tests } = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as VectorFile;
      expect(tests.some((t) => t.valid) && tests.some((t) => !t.valid), file).toBe(true);
    }
  });

  for (const file of fs.readdirSync(dir).sort()) {
    const { schema, tests } = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as VectorFile;
    for (const test of tests) {
      it(`${file}: ${test.description} is ${test.valid ? 'accepted' : 'refused'}`, () => {
        expect(validator.check(schema, test.data) === null).toBe(test.valid);
      });
    }
  }
});
