import type { StoredLog } from '../../repositories/logs-repository.js';
import type { StoreFailure } from '../../services/store-failure.js';
import type { HandlerContext } from './index.js';

/**
 * The one answer scheme of both log shippers (demo and system): each batch, by its id, gets
 * logs.ack once committed or logs.nack when it was not stored, and the agent sends it again.
 */
export function logAnswers(ctx: HandlerContext, batchId: string) {
  return {
    stored: (records: StoredLog[], duplicates: number) =>
      ctx.send({ type: 'logs.ack', id: batchId, data: { stored: records.length, duplicates } }),
    failed: (failure: StoreFailure) =>
      ctx.send({ type: 'logs.nack', id: batchId, data: { code: failure.code, message: failure.message, retry_after_ms: failure.retryAfterMs } }),
  };
}
