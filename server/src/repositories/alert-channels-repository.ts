import type { AlertDelivery, ChannelEmail } from '@dvic/protocol';
import type { Db } from '../db/database.js';

/** A channel as stored: with its secret (HMAC key, bot token or SMTP password), which the API never answers. */
export interface ChannelRecord {
  id: string;
  type: 'webhook' | 'discord' | 'slack' | 'ntfy' | 'telegram' | 'teams' | 'email';
  name: string;
  url: string | null;
  secret: string | null;
  chatId: string | null;
  email: ChannelEmail | null;
  enabled: boolean;
  createdAt: number;
}

interface ChannelRow {
  id: string; type: ChannelRecord['type']; name: string; url: string | null; secret: string | null; chat_id: string | null;
  email: string | null; enabled: number; created_at: number;
}

const toRecord = (r: ChannelRow): ChannelRecord => ({
  id: r.id, type: r.type, name: r.name, url: r.url, secret: r.secret, chatId: r.chat_id,
  email: r.email === null ? null : (JSON.parse(r.email) as ChannelEmail), enabled: r.enabled === 1, createdAt: r.created_at,
});

/** Deliveries kept per channel (the newest). */
const KEEP_DELIVERIES = 200;

/** Notification channels and their delivery log (migration 0013). */
export class AlertChannelsRepository {
  constructor(private readonly db: Db) {}

  all(): ChannelRecord[] {
    return (this.db.prepare('SELECT * FROM alert_channels ORDER BY created_at, name').all() as ChannelRow[]).map(toRecord);
  }

  save(c: ChannelRecord): void {
    this.db.prepare(`
      INSERT INTO alert_channels (id, type, name, url, secret, chat_id, email, enabled, created_at)
      VALUES (@id, @type, @name, @url, @secret, @chatId, @email, @enabled, @createdAt)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, secret = excluded.secret, chat_id = excluded.chat_id,
        email = excluded.email, enabled = excluded.enabled`).run({ ...c, email: c.email && JSON.stringify(c.email), enabled: c.enabled ? 1 : 0 });
  }

  delete(id: string): boolean {
    this.db.prepare('DELETE FROM alert_deliveries WHERE channel_id = ?').run(id);
    return this.db.prepare('DELETE FROM alert_channels WHERE id = ?').run(id).changes > 0;
  }

  saveDelivery(d: AlertDelivery): void {
    this.db.prepare(`INSERT INTO alert_deliveries (id, channel_id, body, created_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET body = excluded.body`).run(d.id, d.channel_id, JSON.stringify(d), d.created_at);
  }

  /** Forgets all but the newest deliveries of a channel. */
  trimDeliveries(channelId: string): void {
    this.db.prepare(`DELETE FROM alert_deliveries WHERE channel_id = ? AND id NOT IN
      (SELECT id FROM alert_deliveries WHERE channel_id = ? ORDER BY created_at DESC LIMIT ${KEEP_DELIVERIES})`).run(channelId, channelId);
  }

  deliveries(channelId: string, limit: number): AlertDelivery[] {
    const rows = this.db.prepare('SELECT body FROM alert_deliveries WHERE channel_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?').all(channelId, limit) as { body: string }[];
    return rows.map((r) => JSON.parse(r.body) as AlertDelivery);
  }
}
