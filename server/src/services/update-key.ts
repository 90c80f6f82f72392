import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The key the server signs agent updates with; agents pin its public half (welcome.update_key). */
export interface UpdateKey {
  publicKeyPem: string;
  /** Base64 DER ECDSA P-256 / SHA-256 signature: what `openssl dgst -sha256 -verify` checks on the node. */
  sign(data: Buffer): string;
}

export const UPDATE_KEY_FILE = 'update-key.pem';

/**
 * Loads the update-signing key from the data dir, or makes one the first time (ECDSA P-256:
 * openssl 1.1 on old nodes verifies it with `dgst`, unlike Ed25519). The private key file is 0600.
 */
export function loadUpdateKey(dataDir: string): UpdateKey {
  const file = path.join(dataDir, UPDATE_KEY_FILE);
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    fs.writeFileSync(`${file}.tmp`, pem, { mode: 0o600 });
    fs.renameSync(`${file}.tmp`, file);
  }
  fs.chmodSync(file, 0o600);
  const privateKey = crypto.createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ec') throw new Error(`${file} is not an ECDSA key`);
  return {
    publicKeyPem: crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
    sign: (data) => crypto.sign('sha256', data, privateKey).toString('base64'),
  };
}
