import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatHeader, formatRecord, open, type Header, type Level } from '../src/index.js';

const repoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const vectors = JSON.parse(fs.readFileSync(path.join(repoDir, 'protocol/vectors/logs/format.json'), 'utf8'));
const readLog = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-node-log-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('format vectors', () => {
  for (const v of vectors.records) {
    it(`record: ${v.description}`, () => {
      expect(formatRecord(v.input.ts, v.input.level as Level, v.input.message, v.input.fields)).toBe(v.line);
    });
  }
  for (const v of vectors.headers) {
    it(`header: ${v.description}`, () => {
      const shuffled = Object.fromEntries(Object.entries(v.input).reverse()) as unknown as Header;
      expect(formatHeader(shuffled)).toBe(v.line);
    });
  }
});

describe('open', () => {
  it('creates a new 0644 file with the header first and one line per record', () => {
    const log = open({ demo: 'kiosk', directory: dir });
    log.info('visitor detected', { zone: 3 });
    log.error('sensor lost\nreconnecting');
    log.close();
    expect(path.basename(log.path)).toMatch(/^dvic_log_[A-Za-z0-9_-]{22}$/);
    expect(fs.statSync(log.path).mode & 0o777).toBe(0o644);
    const [header, ...records] = readLog(log.path);
    expect(header).toMatchObject({ dvic_log: 1, token: log.token, generation: 0, demo: 'kiosk', pid: process.pid, lang: 'node', exe: fs.readlinkSync('/proc/self/exe') });
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    expect(header.start_time).toBe(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]));
    expect(records.map((r: any) => [r.level, r.message, r.fields])).toEqual([['INFO', 'visitor detected', { zone: 3 }], ['ERROR', 'sensor lost\nreconnecting', undefined]]);
  });

  it('makes private logs 0600 and rotates without losing lines', () => {
    const log = open({ demo: 'kiosk', directory: dir, private: true, maxBytes: 16 * 1024 });
    for (let i = 0; i < 300; i++) log.info(`line ${i}`);
    log.close();
    expect(fs.statSync(log.path).mode & 0o777).toBe(0o600);
    const [oldHeader, ...old] = readLog(`${log.path}.1`);
    const [newHeader, ...fresh] = readLog(log.path);
    expect([oldHeader.generation, newHeader.generation]).toEqual([0, 1]);
    expect([...old, ...fresh].map((r: any) => r.message)).toEqual(Array.from({ length: 300 }, (_, i) => `line ${i}`));
  });

  it('works from CommonJS and from ESM through the built package', () => {
    const env = { ...process.env, DVIC_LOG_DIR: dir };
    const cjs = execFileSync(process.execPath, ['-e', "const l = require('@dvic/log'); const log = l.open({ demo: 'cjs' }); log.warn('from require'); console.log(log.path)"], { cwd: repoDir, env }).toString().trim();
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "import { open } from '@dvic/log'; const log = open({ demo: 'esm' }); log.warn('from import'); console.log(log.path)"], { cwd: repoDir, env }).toString().trim();
    expect(readLog(cjs)[1].message).toBe('from require');
    expect(readLog(esm)[1].message).toBe('from import');
  });
});
