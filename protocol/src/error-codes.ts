/**
 * Every error the server reports, REST ({error: {code, message}}) and protocol (type "error").
 * Codes are stable: the CLI and the dashboard switch on them, so never rename one.
 */
export const ErrorCode = {
  // request shape
  badRequest: 'bad_request',
  invalidJson: 'invalid_json',
  invalidMessage: 'invalid_message',
  unknownType: 'unknown_type',
  /** A valid message this peer does not implement (yet). */
  unsupported: 'unsupported',
  notFound: 'not_found',
  conflict: 'conflict',
  // auth
  unauthorized: 'unauthorized',
  invalidCredentials: 'invalid_credentials',
  forbidden: 'forbidden',
  tooManyAttempts: 'too_many_attempts',
  // nodes
  nodeOffline: 'node_offline',
  nodeRevoked: 'node_revoked',
  // anything else
  internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorBody {
  error: { code: ErrorCode | string; message: string };
}
