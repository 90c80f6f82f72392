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
  /** A request body over the route's limit (413). */
  payloadTooLarge: 'payload_too_large',
  conflict: 'conflict',
  /** A name or id prefix matches several things: error.candidates lists them. */
  ambiguous: 'ambiguous',
  // auth
  unauthorized: 'unauthorized',
  invalidCredentials: 'invalid_credentials',
  forbidden: 'forbidden',
  tooManyAttempts: 'too_many_attempts',
  /** A request body must be JSON (content-type application/json): a CSRF defence. */
  unsupportedMediaType: 'unsupported_media_type',
  /** A browser request from a page of another origin. */
  originRefused: 'origin_refused',
  // storage
  /** The server's disk is full or below its free-space floor: retry later. */
  storageFull: 'storage_full',
  /** Any other failure to write: retry later. */
  storageFailed: 'storage_failed',
  /** Too much is waiting to be written: retry later. */
  overloaded: 'overloaded',
  // nodes
  nodeOffline: 'node_offline',
  nodeRevoked: 'node_revoked',
  /** Scale-out: the replica that holds the node's agent did not answer in time (or is gone and its lease not yet expired). */
  replicaUnreachable: 'replica_unreachable',
  // anything else
  internal: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
