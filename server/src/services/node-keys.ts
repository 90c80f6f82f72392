import crypto from 'node:crypto';
import { authMessage } from '@dvic/protocol';

export interface NodeKeypair {
  /** SPKI PEM, kept by the server. */
  publicKeyPem: string;
  /** PKCS#8 PEM, handed to the node once and never stored by the server. */
  privateKeyPem: string;
}

export function generateNodeKeypair(): NodeKeypair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Verifies a hello signature made with the node's Ed25519 or ECDSA P-256 key. */
export function verifyNodeSignature(publicKeyPem: string, nonce: string, nodeId: string, signatureB64: string): boolean {
  try {
    const key = crypto.createPublicKey(publicKeyPem);
    const digest = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
    return crypto.verify(digest, Buffer.from(authMessage(nonce, nodeId)), key, Buffer.from(signatureB64, 'base64'));
  } catch {
    return false;
  }
}
