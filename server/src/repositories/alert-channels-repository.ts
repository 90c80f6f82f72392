import type { AlertDelivery, ChannelEmail } from '@dvic/protocol';
import type { Sql } from '../db/sql.js';

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

/** Notification channels and their delivery log (migration 0014). */
export class AlertChannelsRepository {
  constructor(private readonly sql: Sql) {}

  async all(): Promise<ChannelRecord[]> {
    return (await this.sql.all<ChannelRow>('SELECT * FROM alert_channels ORDER BY created_at, name')).map(toRecord);
  }

  async save(c: ChannelRecord): Promise<void> {
    await this.sql.run(`
      INSERT INTO alert_channels (id, type, name, url, secret, chat_id, email, enabled, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, url = excluded.url, secret = excluded.secret, chat_id = excluded.chat_id,
        email = excluded.email, enabled = excluded.enabled`,
    [c.id, c.type, c.name, c.url, c.secret, c.chatId, c.email && JSON.stringify(c.email), c.enabled ? 1 : 0, c.createdAt]);
  }

  /** Deletes a channel with its delivery log, in one transaction. */
  async delete(id: string): Promise<boolean> {
    return this.sql.transaction(async () => {
      await this.sql.run('DELETE FROM alert_deliveries WHERE channel_id = ?', [id]);
      return (await this.sql.run('DELETE FROM alert_channels WHERE id = ?', [id])).changes > 0;
    });
  }

  async saveDelivery(d: AlertDelivery): Promise<void> {
    await this.sql.run(`INSERT INTO alert_deliveries (id, channel_id, body, created_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET body = excluded.body`, [d.id, d.channel_id, JSON.stringify(d), d.created_at]);
  }

  async delivery(id: string): Promise<AlertDelivery | undefined> {
    const row = await this.sql.get<{ body: string }>('SELECT body FROM alert_deliveries WHERE id = ?', [id]);
    return row ? (JSON.parse(row.body) as AlertDelivery) : undefined;
  }

  /** Forgets all but the newest deliveries of a channel. */
  async trimDeliveries(channelId: string): Promise<void> {
    await this.sql.run(`DELETE FROM alert_deliveries WHERE channel_id = ? AND id NOT IN
      (SELECT id FROM alert_deliveries WHERE channel_id = ? ORDER BY created_at DESC, id DESC LIMIT ${KEEP_DELIVERIES})`, [channelId, channelId]);
  }

  /** Deliveries still to attempt (stored pending before a restart or a handover), oldest first. */
  async pendingDeliveries(): Promise<AlertDelivery[]> {
    const status = this.sql.dialect === 'postgres' ? "(body::jsonb ->> 'status')" : "json_extract(body, '$.status')";
    const rows = await this.sql.all<{ body: string }>(`SELECT body FROM alert_deliveries WHERE ${status} = 'pending' ORDER BY created_at, id`);
    return rows.map((r) => JSON.parse(r.body) as AlertDelivery);
  }

  /** Newest first (deliveries of the same millisecond in a stable order). */
  async deliveries(channelId: string, limit: number): Promise<AlertDelivery[]> {
    const rows = await this.sql.all<{ body: string }>('SELECT body FROM alert_deliveries WHERE channel_id = ? ORDER BY created_at DESC, id DESC LIMIT ?', [channelId, limit]);
    return rows.map((r) => JSON.parse(r.body) as AlertDelivery);
  }
}
