import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProtocolValidator, type LogFileHeader } from '@dvic/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatHeader, formatRecord, open, type Header, type Level, type Logger } from '../src/index.js';

const repoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const vectors = JSON.parse(fs.readFileSync(path.join(repoDir, 'protocol/vectors/logs/format.json'), 'utf8'));
/** A record line of a log file (docs/log-format.md). */
interface FileRecord { ts: string; level: string; message: string; fields?: Record<string, unknown> }

/** A log file as the agent reads it: the header, then the records (without the closing record unless asked). */
function readLog(file: string, closing = false): [LogFileHeader, ...FileRecord[]] {
  const [header, ...records] = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
  const kept = (records as FileRecord[]).filter((r) => closing || r.fields?.dvic_end === undefined);
  return [header as LogFileHeader, ...kept];
}
const validator = new ProtocolValidator();
const HEADER_SCHEMA = 'https://dvic.devinci.fr/protocol/v1/log-header.json';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-node-log-'));
  vi.stubEnv('DVIC_LOG_MAX_FILES', undefined);
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  vi.unstubAllEnvs();
});

interface FileSummary { name: string; generation: number; records_before: number; records: number }

/** The files of a token: rotated generations oldest first, then the live file. */
function tokenFiles(token: string): string[] {
  const generation = (name: string) => (name.includes('.') ? Number(name.split('.').pop()) : Infinity);
  return fs.readdirSync(dir).filter((n) => n === `dvic_log_${token}` || n.startsWith(`dvic_log_${token}.`)).sort((a, b) => generation(a) - generation(b));
}

function summary(name: string): FileSummary {
  const [header, ...records] = readLog(path.join(dir, name));
  return { name, generation: header.generation ?? 0, records_before: header.records_before ?? 0, records: records.length };
}

/** Every line is what formatHeader/formatRecord (checked against the vectors) make of it. */
function expectCanonical(file: string): void {
  const [headerLine, ...recordLines] = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const header = JSON.parse(headerLine!);
  expect(formatHeader(header)).toBe(headerLine);
  expect(validator.check(HEADER_SCHEMA, header)).toBeNull();
  for (const line of recordLines) {
    const r = JSON.parse(line);
    expect(formatRecord(r.ts, r.level, r.message, r.fields)).toBe(line);
  }
}

/** Checks every file of a logger's token and returns the records it has had in all. */
function checkGenerations(log: Logger): number {
  const files = tokenFiles(log.token).map(summary);
  for (const [i, later] of files.entries()) {
    const earlier = files[i - 1];
    if (earlier && later.generation === earlier.generation + 1) expect(later.records_before).toBe(earlier.records_before + earlier.records);
    else if (earlier) expect(later.records_before).toBeGreaterThan(earlier.records_before + earlier.records);
    if (later.name !== path.basename(log.path)) expect([later.name, later.records > 0]).toEqual([`${path.basename(log.path)}.${later.generation}`, true]);
    expectCanonical(path.join(dir, later.name));
  }
  const live = files.at(-1)!;
  expect(live.name).toBe(path.basename(log.path));
  return live.records_before + live.records;
}

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
    expect(records.map((r) => [r.level, r.message, r.fields])).toEqual([['INFO', 'visitor detected', { zone: 3 }], ['ERROR', 'sensor lost\nreconnecting', undefined]]);
  });

  it('makes private logs 0600 and rotates without losing lines', () => {
    const log = open({ demo: 'kiosk', directory: dir, private: true, maxBytes: 16 * 1024, maxFiles: 100 });
    for (let i = 0; i < 2000; i++) log.info(`line ${i}`, { i });
    log.close();
    expect(fs.statSync(log.path).mode & 0o777).toBe(0o600);
    const names = tokenFiles(log.token);
    expect(names.length).toBeGreaterThanOrEqual(3);
    expect(names).toEqual([...names.slice(0, -1).map((_, g) => `${path.basename(log.path)}.${g}`), path.basename(log.path)]);
    expect(checkGenerations(log)).toBe(2000);
    const records = names.flatMap((n) => readLog(path.join(dir, n)).slice(1) as FileRecord[]);
    expect(records.map((r) => r.message)).toEqual(Array.from({ length: 2000 }, (_, i) => `line ${i}`));
  });

  it('writes the header of generation 0 with records_before 0, valid for the agent', () => {
    const log = open({ demo: 'kiosk', directory: dir });
    log.close();
    expect(readLog(log.path)[0]).toMatchObject({ generation: 0, records_before: 0, lib_version: '0.2.0' });
    expectCanonical(log.path);
  });

  it('works from CommonJS and from ESM through the built package', () => {
    const env = { ...process.env, DVIC_LOG_DIR: dir };
    const cjs = execFileSync(process.execPath, ['-e', "const l = require('@dvic/log'); const log = l.open({ demo: 'cjs' }); log.warn('from require'); console.log(log.path)"], { cwd: repoDir, env }).toString().trim();
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "import { open } from '@dvic/log'; const log = open({ demo: 'esm' }); log.warn('from import'); console.log(log.path)"], { cwd: repoDir, env }).toString().trim();
    expect(readLog(cjs)[1]?.message).toBe('from require');
    expect(readLog(esm)[1]?.message).toBe('from import');
  });
});

describe('rotation', () => {
  for (const v of vectors.rotation) {
    it(`vector: ${v.description}`, () => {
      const log = open({ demo: 'kiosk', directory: dir, maxBytes: v.max_bytes, ...(v.max_files === undefined ? {} : { maxFiles: v.max_files }) });
      for (let i = 1; i <= v.records; i++) {
        log.info(`record ${i - 1}`);
        for (const d of v.agent_deletes ?? []) if (d.after_records === i) for (const g of d.generations) fs.unlinkSync(`${log.path}.${g}`);
      }
      log.close();
      const expected = v.files.map((f: FileSummary) => ({ ...f, name: f.name.replace('<token>', log.token) }));
      expect(tokenFiles(log.token).map(summary)).toEqual(expected);
      expect(checkGenerations(log)).toBe(v.records);
    });
  }

  it('keeps the newest maxFiles rotated generations', () => {
    const log = open({ demo: 'kiosk', directory: dir, maxBytes: 4096, maxFiles: 3 });
    let written = 0;
    while (!fs.existsSync(`${log.path}.9`)) log.info(`record ${written++}`);
    log.close();
    expect(tokenFiles(log.token)).toEqual([7, 8, 9].map((g) => `${path.basename(log.path)}.${g}`).concat(path.basename(log.path)));
    expect(checkGenerations(log)).toBe(written);
  });

  it('takes rotated files deleted by the agent as normal', () => {
    const log = open({ demo: 'kiosk', directory: dir, maxBytes: 2048, maxFiles: 2 });
    for (let i = 0; i < 2000; i++) {
      log.info(`record ${i}`);
      if (i % 7 === 0) for (const name of tokenFiles(log.token).slice(0, -1)) fs.unlinkSync(path.join(dir, name));
    }
    log.close();
    expect(tokenFiles(log.token).length).toBeLessThanOrEqual(3);
    expect(checkGenerations(log)).toBe(2000);
  });

  it('takes maxFiles from the option, else DVIC_LOG_MAX_FILES, else 4', () => {
    const rotatedAfter = (options: { maxFiles?: number }, env?: string) => {
      vi.stubEnv('DVIC_LOG_MAX_FILES', env);
      const log = open({ demo: 'kiosk', directory: dir, maxBytes: 1, ...options });
      for (let i = 0; i < 8; i++) log.info(`record ${i}`);
      log.close();
      return tokenFiles(log.token).length - 1;
    };
    expect(rotatedAfter({})).toBe(4);
    expect(rotatedAfter({}, '1')).toBe(1);
    expect(rotatedAfter({}, '0')).toBe(0);
    expect(rotatedAfter({}, 'two')).toBe(4);
    expect(rotatedAfter({}, '-1')).toBe(4);
    expect(rotatedAfter({ maxFiles: 2 }, '1')).toBe(2);
    expect(() => open({ demo: 'kiosk', directory: dir, maxFiles: -1 })).toThrow(/maxFiles/);
  });
});

describe('the closing record', () => {
  const lib = path.join(repoDir, 'libs/node/dist/cjs/index.js');
  const run = (body: string) => {
    const script = `const log = require(${JSON.stringify(lib)}).open({ demo: 'closing', directory: ${JSON.stringify(dir)} }); log.info('up'); ${body}`;
    try {
      execFileSync(process.execPath, ['-e', script], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // a non-zero exit or a signal is what some cases test
    }
    const [file] = fs.readdirSync(dir);
    return readLog(path.join(dir, file!), true).slice(1) as FileRecord[];
  };

  it('is "exited" with the exit code on a normal exit', () => {
    expect(run('process.exitCode = 3;').at(-1)?.fields).toEqual({ dvic_end: 'exited', exit_code: 3 });
  });

  it('is "killed" on SIGTERM, and the process still ends by the signal', () => {
    expect(run("process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 10000);").at(-1)?.fields).toEqual({ dvic_end: 'killed' });
  });

  it('is missing when the process is killed outright', () => {
    expect(run("process.kill(process.pid, 'SIGKILL');").map((r) => r.message)).toEqual(['up']);
  });
});
