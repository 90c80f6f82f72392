import crypto from 'node:crypto';
import type { ChannelRecord } from '../../repositories/alert-channels-repository.js';
import type { AlertMessage } from '../message.js';
import { cut, json, type PostRequest } from './http-post.js';

/** Every channel's request, from the message (pure; each shape as its service documents it, docs/alerts.md). */
export type Format = (channel: ChannelRecord, message: AlertMessage) => PostRequest;

const COLORS = { firing: 0xd93f0b, repeat: 0xd93f0b, flapping: 0xfbca04, resolved: 0x0e8a16, test: 0x1d76db } as const;
const mustUrl = (c: ChannelRecord): string => c.url ?? '';

/** HMAC-SHA256 over "<timestamp>.<body>", hex: the receiver checks it and refuses old timestamps (replays). */
export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${crypto.createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Generic webhook: the AlertWebhook JSON (protocol/schemas/api/alert-webhook.json), signed when a secret is set. */
export const webhook: Format = (c, m) => {
  const request = json(mustUrl(c), m);
  if (!c.secret) return request;
  const timestamp = String(m.sent_at);
  return { ...request, headers: { ...request.headers, 'x-dvic-timestamp': timestamp, 'x-dvic-signature': signature(c.secret, timestamp, request.body) } };
};

/** Discord "Execute Webhook": one embed (title <= 256, description <= 4096); no mentions, whatever a log line says. */
export const discord: Format = (c, m) => json(mustUrl(c), {
  username: 'DVIC Demo Monitor',
  embeds: [{ title: cut(m.title, 256), description: cut(m.text, 4096), color: COLORS[m.event], timestamp: new Date(m.sent_at).toISOString() }],
  allowed_mentions: { parse: [] },
});

/** Slack incoming webhook: {"text"}, with &, < and > escaped as Slack asks (no accidental links or mentions). */
export const slack: Format = (c, m) => json(mustUrl(c), { text: m.text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') });

const NTFY_PRIORITY = { firing: 4, repeat: 4, flapping: 3, resolved: 3, test: 3 } as const;
const NTFY_TAGS = { firing: 'rotating_light', repeat: 'rotating_light', flapping: 'warning', resolved: 'white_check_mark', test: 'bell' } as const;

/** ntfy "publish as JSON": POST to the server's root with the topic in the body (the channel URL is the topic's URL). */
export const ntfy: Format = (c, m) => {
  const url = new URL(mustUrl(c));
  const parts = url.pathname.split('/').filter(Boolean);
  const topic = parts.pop() ?? '';
  const root = `${url.origin}/${parts.map((p) => `${p}/`).join('')}`;
  const critical = m.alerts.some((a) => a.severity === 'critical');
  return json(root, {
    topic, title: cut(m.title, 250), message: cut(m.text, 4000), tags: [NTFY_TAGS[m.event]],
    priority: critical && m.event === 'firing' ? 5 : NTFY_PRIORITY[m.event],
  });
};

export const TELEGRAM_API = 'https://api.telegram.org';

/** Telegram Bot API sendMessage (plain text, <= 4096 characters); the URL is the API base (tests point it at a local server). */
export const telegram: Format = (c, m) => json(`${(c.url ?? TELEGRAM_API).replace(/\/+$/, '')}/bot${c.secret ?? ''}/sendMessage`, {
  chat_id: c.chatId, text: cut(m.text, 4096), disable_web_page_preview: true,
});

/** Microsoft Teams (Workflows "post to a channel when a webhook request is received"): a message with one Adaptive Card. */
export const teams: Format = (c, m) => json(mustUrl(c), {
  type: 'message',
  attachments: [{
    contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null,
    content: {
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', type: 'AdaptiveCard', version: '1.4',
      body: [
        { type: 'TextBlock', text: m.title, weight: 'Bolder', size: 'Medium', wrap: true, color: m.event === 'resolved' ? 'Good' : 'Attention' },
        { type: 'TextBlock', text: m.text, wrap: true },
      ],
    },
  }],
});

export const HTTP_FORMATS: Record<Exclude<ChannelRecord['type'], 'email'>, Format> = { webhook, discord, slack, ntfy, telegram, teams };
