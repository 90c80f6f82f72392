// `npm test` runs each suite through scripts/run-suite.mjs: a suite that leaks a process, or a
// command that cannot start, must still give a result, or the whole run (and CI) would hang or
// crash without its summary. Stand-in commands play the suites.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runSuite } from '../scripts/run-suite.mjs';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-suite-'));
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
});

afterEach(() => {
  const pidFile = path.join(dir, 'leaked.pid');
  if (fs.existsSync(pidFile)) {
    try { process.kill(Number(fs.readFileSync(pidFile, 'utf8'))); } catch { /* already gone */ }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

describe('runSuite', () => {
  it('gives the result of a suite that exited while a process it leaked still holds its output open', async () => {
    // The leaked process outlives the test's 5 s limit: waiting for the output to close would fail it.
    const leaky = `sleep 60 & echo $! > leaked.pid; echo done; exit 3`;
    const result = await runSuite(['leaky', '/bin/sh', ['-c', leaky]], '[t] ', dir);
    expect(result).toMatchObject({ name: 'leaky', ok: false, detail: 'exit 3' });
    expect(console.log).toHaveBeenCalledWith('[t] done');
  });

  it('counts a suite whose command cannot start as failed, naming why', async () => {
    const result = await runSuite(['missing', path.join(dir, 'no-such-command'), []], '[t] ', dir);
    expect(result.ok).toBe(false);
    expect(result.detail).toContain('ENOENT');
  });

  it('passes a suite that exits 0 with its output relayed line by line', async () => {
    const result = await runSuite(['fine', '/bin/sh', ['-c', 'echo one; echo two >&2']], '[t] ', dir);
    expect(result).toMatchObject({ ok: true, detail: 'exit 0' });
    expect(console.log).toHaveBeenCalledWith('[t] one');
    expect(console.log).toHaveBeenCalledWith('[t] two');
  });
});
