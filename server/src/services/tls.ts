import crypto from 'node:crypto';
import fs from 'node:fs';
import { ConfigError } from '../config.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  /** Hex SHA-256 of the (first, leaf) certificate's DER: what agents pin (tls_cert_sha256). */
  certSha256: string;
}

/** SHA-256 of a PEM certificate's DER encoding, lowercase hex without separators. */
export function certificateSha256(pem: string | Buffer): string {
  return new crypto.X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
}

/** Reads DVIC_TLS_CERT and DVIC_TLS_KEY, failing with a message that names the file. */
export function loadTls(certFile: string, keyFile: string): TlsFiles {
  const read = (file: string, name: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${name}=${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const cert = read(certFile, 'DVIC_TLS_CERT');
  const key = read(keyFile, 'DVIC_TLS_KEY');
  let certSha256: string;
  try {
    certSha256 = certificateSha256(cert);
    crypto.createPrivateKey(key);
  } catch (err) {
    throw new ConfigError(`DVIC_TLS_CERT/DVIC_TLS_KEY: not a PEM certificate and key (${(err as Error).message})`);
  }
  return { cert, key, certSha256 };
}
