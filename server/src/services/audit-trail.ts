import type { FastifyBaseLogger } from 'fastify';
import type { AuditRepository, NewAuditEntry } from '../repositories/audit-repository.js';

/** Bounds of one entry: a request cannot make the audit log (or its writer) blow up. */
const MAX_STRING = 256;
const MAX_ITEMS = 20;
const MAX_DEPTH = 4;
const MAX_DETAILS_CHARS = 4096;
const MAX_URL = 512;
/** Request fields never written to the audit log. */
const SECRET_KEY = /pass(word)?|secret|private_key|^token$|cookie|authorization/i;

/** Keeps details readable and small: long strings cut, deep or long structures summarised, secrets removed. */
export function boundDetails(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length} chars)` : value;
  if (value === null || typeof value !== 'object') return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[${value.length} items]` : '{…}';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => boundDetails(v, depth + 1));
    return value.length > MAX_ITEMS ? [...items, `… ${value.length - MAX_ITEMS} more`] : items;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value);
  for (const [key, v] of entries.slice(0, MAX_ITEMS)) out[key.slice(0, 64)] = SECRET_KEY.test(key) ? '[redacted]' : boundDetails(v, depth + 1);
  if (entries.length > MAX_ITEMS) out['…'] = `${entries.length - MAX_ITEMS} more keys`;
  return out;
}

function boundedEntry(entry: NewAuditEntry): NewAuditEntry {
  let details = entry.details && (boundDetails(entry.details) as Record<string, unknown>);
  const json = details && JSON.stringify(details);
  if (json && json.length > MAX_DETAILS_CHARS) details = { truncated: true, preview: json.slice(0, MAX_DETAILS_CHARS / 2) };
  return {
    ...entry,
    action: entry.action.slice(0, 64),
    target: entry.target === null ? null : entry.target.slice(0, MAX_STRING),
    username: entry.username === null ? null : entry.username.slice(0, 128),
    details: details ?? null,
  };
}

interface Knock {
  count: number;
  reasons: Record<string, number>;
  urls: string[];
}

/**
 * The append-only audit log, as the server writes it. Entries are bounded; requests without any
 * credentials are not written one row each (a scanner would fill the disk) but counted per address
 * and written once a minute as one entry.
 */
export class AuditTrail {
  private knocks = new Map<string, Knock>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly repository: AuditRepository, private readonly log: FastifyBaseLogger, private readonly maxAddresses = 10_000) {
    this.timer = setInterval(() => void this.flushUnauthenticated(), 60_000);
    this.timer.unref();
  }

  /** Appends an entry; rejects when it cannot be written (callers that change things must not go on). */
  async append(entry: NewAuditEntry): Promise<void> {
    await this.repository.append(boundedEntry(entry));
  }

  /**
   * Appends an entry of something that happened (a refusal, an end of session): on a full disk it
   * waits in memory. Never rejects (callers need not wait for it); the promise settles once it is
   * stored or waits.
   */
  appendBestEffort(entry: NewAuditEntry): Promise<void> {
    let bounded: NewAuditEntry;
    try {
      bounded = boundedEntry(entry);
    } catch (err) {
      this.log.error({ err, action: entry.action }, 'could not write to the audit log');
      return Promise.resolve();
    }
    return this.repository.appendLater(bounded).catch((err: unknown) => {
      this.log.error({ err, action: entry.action }, 'could not write to the audit log');
    });
  }

  /** A request with no (or unusable) credentials: counted per address, written once a minute. */
  unauthenticated(ip: string, reason: string, method: string, url: string): void {
    let knock = this.knocks.get(ip);
    if (!knock) {
      if (this.knocks.size >= this.maxAddresses) return this.log.warn({ ip, reason }, 'unauthenticated request (not counted: too many addresses)');
      this.knocks.set(ip, (knock = { count: 0, reasons: {}, urls: [] }));
    }
    knock.count++;
    knock.reasons[reason] = (knock.reasons[reason] ?? 0) + 1;
    if (knock.urls.length < 5) knock.urls.push(`${method} ${url.slice(0, MAX_URL)}`);
  }

  /** Writes the counts of the last minute, one entry per address. */
  async flushUnauthenticated(): Promise<void> {
    const knocks = this.knocks;
    this.knocks = new Map();
    for (const [ip, knock] of knocks) {
      await this.appendBestEffort({
        user_id: null, username: null, source_ip: ip, action: 'auth.unauthenticated', target: null, outcome: 'denied',
        details: { requests: knock.count, reasons: knock.reasons, first_urls: knock.urls },
      });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flushUnauthenticated();
  }
}
