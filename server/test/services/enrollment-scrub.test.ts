import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { scrub, shellQuote, sudoCommand } from '../../src/services/enrollment-service.js';
import { sshFingerprint } from '../../src/services/ssh-session.js';

describe('what an enrollment shows people', () => {
  it('removes the password and every line of a private key from remote output and messages', () => {
    const out = scrub('sudo: pass S3cr3t!x was wrong\nS3cr3t!x', { password: 'S3cr3t!x' });
    expect(out).toBe('sudo: pass [password removed] was wrong\n[password removed]');
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
    expect(scrub(`echo b3BlbnNzaC1rZXktdjEAAAAA`, { privateKey: key })).not.toContain('b3BlbnNzaC1rZXktdjEAAAAA');
    expect(scrub('nothing secret', {})).toBe('nothing secret');
  });

  it("quotes paths for the remote shell, quotes inside included", () => {
    expect(shellQuote("/tmp/tmp.x'; reboot; '")).toBe("'/tmp/tmp.x'\\''; reboot; '\\'''");
  });

  it("gives the fingerprint ssh-keygen -lf prints for the same host key", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-hostkey-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'key')]);
      const blob = Buffer.from(fs.readFileSync(path.join(dir, 'key.pub'), 'utf8').split(' ')[1]!, 'base64');
      const printed = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'key.pub')], { encoding: 'utf8' }).split(' ')[1];
      expect(sshFingerprint(blob)).toBe(printed);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('running as root on a target user that is not root', () => {
  it('feeds the password to sudo -S, and with only a key uses sudo -n (passwordless sudo) instead of failing', () => {
    expect(sudoCommand("sh '/tmp/x/install.sh'", 'pw')).toEqual({ command: "sudo -S -p '' sh '/tmp/x/install.sh'", stdin: 'pw\n' });
    expect(sudoCommand("sh '/tmp/x/install.sh'")).toEqual({ command: "sudo -n sh '/tmp/x/install.sh'" });
  });
});
