import { describe, expect, it } from 'vitest';
import type { LogRecordView, LogsRecordsLiveMessage } from '@dvic/protocol/shared';
import { applyLogBatches, mergeRecords, resumeAfter } from '../src/state/logs-state.js';
import { logRecord as record } from '../../protocol/test/fixtures.js';

const records = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => record(from + i));
const batch = (id: string, list: LogRecordView[], caughtUp = false): LogsRecordsLiveMessage =>
  ({ type: 'logs.records', id, data: { records: list, ...(caughtUp ? { caught_up: true } : {}) } });
const ids = (list: LogRecordView[]) => list.map((r) => r.id);

describe('log lines on screen', () => {
  it('shows the history page (newest first from the API) oldest first', () => {
    expect(ids(mergeRecords([], records(1, 5).reverse()))).toEqual([1, 2, 3, 4, 5]);
  });

  it('shows each line once when the live tail repeats lines of the history page', () => {
    const history = mergeRecords([], records(1, 5).reverse());
    const shown = applyLogBatches(history, 's1', [batch('s1', records(4, 8), true), batch('s1', records(9, 9))]);
    expect(ids(shown)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('puts lines back in id order when a replay after a reconnection fills a gap', () => {
    const shown = applyLogBatches(records(1, 3), 's1', [batch('s1', [record(7), record(8)]), batch('s1', records(3, 8))]);
    expect(ids(shown)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('ignores batches of a subscription this view replaced that were still on their way', () => {
    const shown = applyLogBatches([], 'search-2', [batch('search-1', records(1, 3)), batch('search-2', records(2, 2)), batch(undefined as unknown as string, records(5, 5))]);
    expect(ids(shown)).toEqual([2]);
  });

  it('keeps the newest lines only, past the maximum', () => {
    expect(ids(mergeRecords(records(1, 4), records(5, 7), 5))).toEqual([3, 4, 5, 6, 7]);
    expect(ids(mergeRecords(records(1, 4), records(3, 7).reverse(), 5))).toEqual([3, 4, 5, 6, 7]);
  });

  it('resumes after the last line shown, or from the start when none was', () => {
    expect(resumeAfter(records(3, 9))).toBe(9);
    expect(resumeAfter([])).toBe(0);
  });

  it('keeps the same lines, so nothing re-renders, when a batch brings none', () => {
    const shown = records(1, 3);
    expect(mergeRecords(shown, [])).toBe(shown);
    expect(applyLogBatches(shown, 's1', [batch('s1', [], true)])).toBe(shown);
  });
});
