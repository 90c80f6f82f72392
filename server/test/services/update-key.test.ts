import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadUpdateKey } from '../../src/services/update-key.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

// The update-signing key: one file per data dir, or DVIC_UPDATE_KEY_FILE shared by replicas.

describe('update-signing key', () => {
  const dirs: string[] = [];
  const servers: TestServer[] = [];
  const tempDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-update-key-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is made 0600 in a missing file, and the same key is read from it again', () => {
    const file = path.join(tempDir(), 'keys', 'lab-update-key.pem');
    const made = loadUpdateKey(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const again = loadUpdateKey(file);
    expect(again.publicKeyPem).toBe(made.publicKeyPem);
    const data = Buffer.from('agent file');
    expect(crypto.verify('sha256', data, again.publicKeyPem, Buffer.from(made.sign(data), 'base64'))).toBe(true);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['lab-update-key.pem']); // no temporary file left
  });

  it('refuses a file that holds no key, naming it', () => {
    const file = path.join(tempDir(), 'broken.pem');
    fs.writeFileSync(file, 'not a key');
    expect(() => loadUpdateKey(file)).toThrow(`${file} holds no private key in PEM`);
  });

  it('DVIC_UPDATE_KEY_FILE gives two servers with their own data dirs the same key, none in their data dirs', async () => {
    const file = path.join(tempDir(), 'lab-update-key.pem');
    for (let i = 0; i < 2; i++) servers.push(await startTestServer({ DVIC_UPDATE_KEY_FILE: file }));
    const [a, b] = servers.map((s) => s.app.agentHub.updateKeyPem);
    expect(a).toBeTruthy();
    expect(b).toBe(a);
    expect(a).toBe(loadUpdateKey(file).publicKeyPem);
    for (const server of servers) expect(fs.existsSync(path.join(server.dataDir, 'update-key.pem'))).toBe(false);
  }, 60_000);
});
