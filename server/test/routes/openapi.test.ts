import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openapiDocument } from '../../src/openapi-document.js';

const committed = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/openapi.json');

describe('OpenAPI document', () => {
  it('is generated from the route schemas and matches the committed docs/openapi.json', async () => {
    const document = await openapiDocument();
    expect(document, 'run npm run generate').toBe(fs.readFileSync(committed, 'utf8'));
  });

  it('documents node hardware with the protocol schema and names shared schemas', async () => {
    const doc = JSON.parse(await openapiDocument());
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Node', 'ErrorBody']));
    const hardware = doc.components.schemas.Node.properties.hardware.anyOf[0];
    expect(hardware.properties.cpu.required).toEqual(['total_pct', 'per_core_pct']);
    expect(doc.paths['/api/v1/nodes/{id}/revoke'].post.summary).toMatch(/Revoke/);
  });
});
