// CONTRIBUTING.md stays true: every path it names exists (a <placeholder> stands for any file of
// the folder before it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const guide = fs.readFileSync(path.join(repo, 'CONTRIBUTING.md'), 'utf8');

/** Backticked words that look like repository paths. */
function namedPaths(text: string): string[] {
  const found = [...text.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!);
  return [...new Set(found.filter((p) => /^(protocol|server|client|cli|dashboard|agent|libs|e2e|docs|test|bench|scripts)\//.test(p)))];
}

describe('CONTRIBUTING.md', () => {
  const paths = namedPaths(guide);

  it('names the files a change touches', () => {
    expect(paths.length).toBeGreaterThan(30);
  });

  it.each(paths)('%s exists', (named) => {
    const concrete = named.split('/').findIndex((part) => part.includes('<'));
    const existing = concrete === -1 ? named : named.split('/').slice(0, concrete).join('/');
    expect(fs.existsSync(path.join(repo, existing)), `${existing} (from ${named})`).toBe(true);
  });
});
