/** Highest protocol version this code speaks. Bumped only for incompatible changes. */
export const PROTOCOL_VERSION = 1;

/** Frames larger than this are refused: the connection closes with code 1009. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** WebSocket close codes used on /api/v1/agent, with the reason text sent beside them. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policyViolation: 1008,
  messageTooBig: 1009,
  serverError: 1011,
  /** Signature did not verify against the node's public key. */
  authFailed: 4001,
  /** The hello did not arrive before the challenge expired. */
  authTimeout: 4002,
  /** The node was revoked by an administrator. */
  nodeRevoked: 4003,
  /** No node with this id exists. */
  unknownNode: 4004,
  /** The signed nonce was issued for another connection (a replayed hello). */
  replayedNonce: 4005,
  /** The agent speaks no protocol version the server knows. */
  unsupportedProtocol: 4006,
  /** Another connection authenticated as the same node; the newest wins. */
  replaced: 4009,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
