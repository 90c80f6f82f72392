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
 * Loads the update-signing key from its file (<data dir>/update-key.pem, or DVIC_UPDATE_KEY_FILE
 * shared by the replicas of a lab), or makes one the first time (ECDSA P-256: openssl 1.1 on old
 * nodes verifies it with `dgst`, unlike Ed25519). The private key file is 0600.
 */
export function loadUpdateKey(file: string): UpdateKey {
  const pem = readOrMake(file);
  fs.chmodSync(file, 0o600);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${file} holds no private key in PEM: ${(err as Error).message}`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ec') throw new Error(`${file} is not an ECDSA key`);
  return {
    publicKeyPem: crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
    sign: (data) => crypto.sign('sha256', data, privateKey).toString('base64'),
  };
}

/**
 * Replicas starting together may each make a key: each writes its own temporary file and links it
 * into place, which fails when another got there first; then every one reads the winner's.
 */
function readOrMake(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const temporary = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(temporary, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  try {
    fs.linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    fs.unlinkSync(temporary);
  }
  return fs.readFileSync(file, 'utf8');
}
