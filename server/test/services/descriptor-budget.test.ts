import { describe, expect, it } from 'vitest';
import { parseFdLimits, raiseFdLimit } from '../../src/services/descriptor-budget.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('descriptor limits', () => {
  it('reads the soft and hard open file limits from /proc/<pid>/limits', () => {
    expect(parseFdLimits(LIMITS)).toEqual({ soft: 1024, hard: 524288 });
    expect(parseFdLimits(LIMITS.replace('1024                 524288', 'unlimited            unlimited'))).toEqual({ soft: Infinity, hard: Infinity });
    expect(parseFdLimits('Max cpu time unlimited unlimited seconds')).toBeNull();
  });

  it('raises the soft limit to the hard one with prlimit on its own pid, and says so', () => {
    const calls: string[][] = [];
    let limits = { soft: 1024, hard: 4096 };
    const result = raiseFdLimit(() => limits, (file, args) => { calls.push([file, ...args]); limits = { soft: 4096, hard: 4096 }; });
    expect(calls).toEqual([['prlimit', '--pid', String(process.pid), '--nofile=4096:4096']]);
    expect(result).toEqual({ limits: { soft: 4096, hard: 4096 }, message: 'open file limit raised from 1024 to 4096 with prlimit' });
  });

  it('changes nothing and does not fail when prlimit is missing or the limit is already the hard one', () => {
    const missing = () => { throw Object.assign(new Error('spawnSync prlimit ENOENT'), { code: 'ENOENT' }); };
    expect(raiseFdLimit(() => ({ soft: 1024, hard: 4096 }), missing)).toEqual({
      limits: { soft: 1024, hard: 4096 }, message: 'open file limit stays 1024 (hard 4096): prlimit failed (spawnSync prlimit ENOENT)',
    });
    expect(raiseFdLimit(() => ({ soft: 4096, hard: 4096 }), missing).message).toBe('open file limit 4096 (the hard limit)');
    expect(raiseFdLimit(() => null, missing).limits).toBeNull();
  });
});
