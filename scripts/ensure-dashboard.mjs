#!/usr/bin/env node
// `npm start` builds the dashboard only when it has never been built (a fresh clone);
// `npm run build` always rebuilds it.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!fs.existsSync(path.join(root, 'dashboard/dist/index.html'))) {
  console.log('Building the dashboard (first start)…');
  execSync('npm run build --workspace dashboard --silent', { cwd: root, stdio: 'inherit' });
}
if (!fs.existsSync(path.join(root, 'libs/node/dist/esm/index.js'))) {
  execSync('npm run build --workspace @dvic/log --silent', { cwd: root, stdio: 'inherit' });
}
