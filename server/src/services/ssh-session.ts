import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel } from 'ssh2';

const MAX_OUTPUT_CHARS = 64 * 1024;
const READY_TIMEOUT_MS = 20_000;

/** OpenSSH's form of a host key fingerprint: SHA256: and the unpadded base64 of the key's SHA-256. */
export function sshFingerprint(hostKey: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(hostKey).digest('base64').replace(/=+$/, '')}`;
}

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  /** A stream to the target's SSH port (a tunnel through a source node); direct TCP when absent. */
  sock?: Duplex;
}

/** Where the connection stopped: before the host key was seen (connect), at the key (hostKey), or at authentication. */
export class SshFailure extends Error {
  constructor(readonly stage: 'connect' | 'host_key' | 'authenticate', message: string) {
    super(message);
  }
}

export interface ExecResult {
  code: number | null;
  /** stdout and stderr as they came, capped. */
  output: string;
}

/**
 * One SSH connection made with ssh2. `decideHostKey` sees the target's key fingerprint before
 * anything is sent (a refusal ends the connection there); `onHostKeyAccepted` marks the end of
 * the connect stage, before authentication.
 */
export class SshSession {
  private constructor(private readonly client: Client) {}

  static open(target: SshTarget, decideHostKey: (fingerprint: string) => string | null, onHostKeyAccepted: () => void): Promise<SshSession> {
    const client = new Client();
    return new Promise((resolve, reject) => {
      let stage: SshFailure['stage'] = 'connect';
      let refusal: string | null = null;
      client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => target.password ?? '')));
      let settled = false;
      client.once('ready', () => { settled = true; resolve(new SshSession(client)); });
      // Kept for the connection's life: a later failure (the tunnel gone mid-command) ends the
      // running exec through its channel, and must never be an unhandled 'error' event.
      client.on('error', (err: Error & { level?: string }) => {
        client.end();
        if (settled) return;
        settled = true;
        if (refusal) return reject(new SshFailure('host_key', refusal));
        if (err.level === 'client-authentication') {
          return reject(new SshFailure('authenticate', `authentication failed for ${target.username}@${target.host}: wrong password or key (the server accepts: ${methodsOf(err)})`));
        }
        reject(new SshFailure(stage, describeConnectError(err, target)));
      });
      client.once('close', () => reject(new SshFailure(stage, `the connection to ${target.host}:${target.port} closed during the SSH ${stage === 'connect' ? 'handshake' : 'authentication'}`)));
      client.connect({
        host: target.host, port: target.port, username: target.username, readyTimeout: READY_TIMEOUT_MS,
        ...(target.sock ? { sock: target.sock } : {}),
        ...(target.privateKey ? { privateKey: target.privateKey } : { password: target.password, tryKeyboard: true }),
        hostVerifier: (key: Buffer) => {
          refusal = decideHostKey(sshFingerprint(key));
          if (refusal) return false;
          stage = 'authenticate';
          onHostKeyAccepted();
          return true;
        },
      });
    });
  }

  /** Runs a command; stdin (if any) is written then closed. Output is capped, never an exception for a non-zero exit. */
  exec(command: string, stdin?: string | Buffer, timeoutMs = 120_000): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, channel: ClientChannel) => {
        if (err) return reject(err);
        let output = '';
        const take = (d: Buffer) => { if (output.length < MAX_OUTPUT_CHARS) output += d.toString('utf8'); };
        const timer = setTimeout(() => { channel.close(); reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)); }, timeoutMs);
        channel.on('data', take);
        channel.stderr.on('data', take);
        channel.once('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ code: typeof code === 'number' ? code : null, output: output.slice(0, MAX_OUTPUT_CHARS) });
        });
        channel.end(stdin);
      });
    });
  }

  close(): void {
    this.client.end();
  }
}

function methodsOf(err: Error): string {
  const methods = (err as { methods?: unknown }).methods;
  return Array.isArray(methods) && methods.length ? methods.join(', ') : 'unknown';
}

function describeConnectError(err: Error & { code?: string }, target: SshTarget): string {
  const where = `${target.host}:${target.port}`;
  if (err.code === 'ECONNREFUSED') return `connection refused by ${where} (no SSH server on that port?)`;
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') return `${where} is unreachable from the server`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `unknown host ${target.host}`;
  if (/timed out/i.test(err.message)) return `no SSH answer from ${where} within ${READY_TIMEOUT_MS / 1000} s`;
  return `SSH connection to ${where} failed: ${err.message}`;
}
