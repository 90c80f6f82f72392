import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, type ErrorBody } from '@dvic/protocol';
import { passingStoreFailure } from './services/store-failure.js';

type ErrorExtras = Omit<ErrorBody['error'], 'code' | 'message'>;

/** An error with a stable code that the API reports as {error: {code, message, ...extras}}. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extras: ErrorExtras = {},
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, ErrorCode.notFound, `${what} not found`);

/** One error shape for every route, including Fastify's own validation and parsing errors. */
export function errorHandler(error: FastifyError | ApiError, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof ApiError) {
    void reply.code(error.statusCode).headers(error.headers).send({ error: { code: error.code, message: error.message, ...error.extras } });
    return;
  }
  if (error.validation) {
    void reply.code(400).send({ error: { code: ErrorCode.badRequest, message: error.message } });
    return;
  }
  // A write the disk refused (full, read-only, busy): a clear answer to retry later, never a 500.
  const store = passingStoreFailure(error);
  if (store) {
    request.server.storage.writeFailed(store);
    const status = store.code === ErrorCode.storageFull ? 507 : 503;
    void reply.code(status).header('retry-after', String(Math.ceil(store.retryAfterMs / 1000))).send({ error: { code: store.code, message: store.message } });
    return;
  }
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, 'request failed');
    void reply.code(500).send({ error: { code: ErrorCode.internal, message: 'internal server error' } });
    return;
  }
  const code = error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
    ? ErrorCode.invalidJson : status === 413 ? ErrorCode.payloadTooLarge : ErrorCode.badRequest;
  void reply.code(status).send({ error: { code, message: error.message } });
}
