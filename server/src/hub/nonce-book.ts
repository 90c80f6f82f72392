import crypto from 'node:crypto';

/**
 * Issues single-use challenge nonces and remembers recent ones, so a hello carrying a nonce
 * issued to another connection is recognised as a replay rather than just a bad signature.
 */
export class NonceBook {
  private readonly issued = new Map<string, number>();

  constructor(private readonly rememberMs: number, private readonly maxRemembered = 200_000) {}

  issue(now = Date.now()): string {
    this.prune(now);
    const nonce = crypto.randomBytes(32).toString('base64url');
    this.issued.set(nonce, now + this.rememberMs);
    return nonce;
  }

  wasIssued(nonce: string): boolean {
    return this.issued.has(nonce);
  }

  private prune(now: number): void {
    // Map iteration is in insertion order, so expired entries are at the front.
    for (const [nonce, forgetAt] of this.issued) {
      if (forgetAt > now && this.issued.size < this.maxRemembered) break;
      this.issued.delete(nonce);
    }
  }
}
