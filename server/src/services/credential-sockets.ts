import type { WebSocket } from 'ws';
import type { FastifyBaseLogger } from 'fastify';
import { CloseCode } from '@dvic/protocol';

/** What a request was authenticated with: ending it ends every socket it opened. */
/** `scope`: a token limited to some routes (route config `scope`), e.g. metrics. */
export type Credential = { kind: 'session' | 'token'; hash: string; expiresAt: number | null; scope?: 'metrics' | null };

/** Who opened a socket, and with what. */
export interface SocketOwner {
  userId: number;
  credential: Credential;
}

interface Entry extends SocketOwner {
  timer: NodeJS.Timeout | undefined;
}

/** setTimeout's longest delay; a later expiry is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Every open WebSocket (live, terminal, CLI follow) by the credential and the user that opened it,
 * so that ending a credential (sign-out, revoked or expired token, expired session, disabled or
 * removed user, password change) closes its sockets at once with CloseCode.sessionEnded.
 * A periodic check also closes sockets whose credential was ended outside this process (the
 * reset-admin script).
 */
export class CredentialSockets {
  private readonly sockets = new Map<WebSocket, Entry>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    /** Whether a credential still authenticates (read-only: a check records no use). */
    private readonly isValid: (credential: Credential) => Promise<boolean>,
    sweepMs: number,
    private readonly log: FastifyBaseLogger,
  ) {
    this.sweepTimer = setInterval(() => void this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  /** Tracks a socket until it closes; one whose credential ended meanwhile is closed once that is known. */
  register(socket: WebSocket, owner: SocketOwner): void {
    const entry: Entry = { ...owner, timer: undefined };
    this.sockets.set(socket, entry);
    this.armExpiry(socket, entry);
    socket.once('close', () => this.forget(socket));
    void this.stillValid(entry.credential).then((valid) => {
      if (valid || this.sockets.get(socket) !== entry) return;
      this.forget(socket);
      end(socket, 'your session ended: sign in again');
    });
  }

  /** Closes the sockets opened with this credential; returns how many. */
  endCredential(kind: Credential['kind'], hash: string, reason: string): number {
    return this.endWhere((e) => e.credential.kind === kind && e.credential.hash === hash, reason);
  }

  /** Closes the sockets of a user opened with these kinds of credential, but the credential kept. */
  endUser(userId: number, reason: string, options: { keep?: Pick<Credential, 'kind' | 'hash'> | null; kinds?: Credential['kind'][] } = {}): number {
    const { keep = null, kinds = ['session', 'token'] } = options;
    return this.endWhere((e) => e.userId === userId && kinds.includes(e.credential.kind)
      && !(keep && e.credential.kind === keep.kind && e.credential.hash === keep.hash), reason);
  }

  /** Closes the sockets whose credential no longer authenticates. */
  async sweep(): Promise<number> {
    const ended = new Set<Entry>();
    await Promise.all([...this.sockets.values()].map(async (e) => {
      if (!(await this.stillValid(e.credential))) ended.add(e);
    }));
    return this.endWhere((e) => ended.has(e), 'your session ended: sign in again');
  }

  /** Whether a credential still authenticates; a store that cannot tell now closes nothing (the next sweep asks again). */
  private async stillValid(credential: Credential): Promise<boolean> {
    try {
      return await this.isValid(credential);
    } catch (err) {
      this.log.warn({ err }, 'could not check a credential of an open socket');
      return true;
    }
  }

  get count(): number {
    return this.sockets.size;
  }

  stop(): void {
    clearInterval(this.sweepTimer);
    for (const entry of this.sockets.values()) clearTimeout(entry.timer);
  }

  private endWhere(match: (entry: Entry) => boolean, reason: string): number {
    let ended = 0;
    for (const [socket, entry] of [...this.sockets]) {
      if (!match(entry)) continue;
      this.forget(socket);
      end(socket, reason);
      ended++;
    }
    if (ended) this.log.info({ sockets: ended, reason }, 'closed the sockets of ended credentials');
    return ended;
  }

  private armExpiry(socket: WebSocket, entry: Entry): void {
    const { expiresAt } = entry.credential;
    if (expiresAt === null) return;
    const delay = expiresAt - Date.now();
    entry.timer = setTimeout(() => {
      if (delay > MAX_TIMER_MS) return this.armExpiry(socket, entry);
      if (this.sockets.get(socket) !== entry) return;
      this.forget(socket);
      end(socket, entry.credential.kind === 'session' ? 'your session expired: sign in again' : 'the API token expired');
    }, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
    entry.timer.unref();
  }

  private forget(socket: WebSocket): void {
    clearTimeout(this.sockets.get(socket)?.timer);
    this.sockets.delete(socket);
  }
}

function end(socket: WebSocket, reason: string): void {
  if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(CloseCode.sessionEnded, reason.slice(0, 120));
}
