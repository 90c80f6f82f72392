// The Logs page's lines: a history page from GET /api/v1/logs, then the live tail (logs.subscribe
// with after_id), merged by id so that each line shows once, in order, whatever overlaps.
// Types only from @dvic/protocol/shared: no validator in the bundle.
import type { LogRecordView, LogsRecordsLiveMessage } from '@dvic/protocol/shared';

/** Lines kept on screen while following: older ones scroll away (the server keeps them all). */
export const MAX_LINES = 5000;

const byId = (a: LogRecordView, b: LogRecordView) => a.id - b.id;

/**
 * Adds records to the shown ones: each id once, by increasing id, at most `max` (the newest).
 * New live records usually all come after the last one shown: then it only appends.
 */
export function mergeRecords(shown: LogRecordView[], incoming: LogRecordView[], max = MAX_LINES): LogRecordView[] {
  if (incoming.length === 0) return shown;
  const last = shown.at(-1)?.id ?? 0;
  const appendOnly = incoming.every((r, i) => r.id > (i === 0 ? last : incoming[i - 1]!.id));
  const merged = appendOnly ? shown.concat(incoming) : [...new Map([...shown, ...incoming].map((r) => [r.id, r])).values()].sort(byId);
  return merged.length > max ? merged.slice(merged.length - max) : merged;
}

/** The live batches that answer this view's subscription (not an earlier one still in flight), merged. */
export function applyLogBatches(shown: LogRecordView[], requestId: string, messages: LogsRecordsLiveMessage[], max = MAX_LINES): LogRecordView[] {
  let next = shown;
  for (const m of messages) if (m.id === requestId) next = mergeRecords(next, m.data.records, max);
  return next;
}

/**
 * Where a subscription resumes: after the last id shown, or 0 (every stored record) when none is:
 * an empty history means nothing matched then, so only what came since is replayed.
 */
export const resumeAfter = (shown: LogRecordView[]): number => shown.at(-1)?.id ?? 0;
