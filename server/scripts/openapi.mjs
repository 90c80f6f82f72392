#!/usr/bin/env node
// Writes docs/openapi.json from the server's route schemas (needs a build: tsc -b).
// With --check it only compares, and exits 1 when the committed document is stale.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openapiDocument } from '../dist/openapi-document.js';

const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/openapi.json');
const document = await openapiDocument();
const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
if (process.argv.includes('--check')) {
  if (current !== document) {
    console.error('out of date: docs/openapi.json (run npm run generate)');
    process.exit(1);
  }
} else if (current !== document) {
  fs.writeFileSync(target, document);
  console.log('wrote docs/openapi.json');
}
