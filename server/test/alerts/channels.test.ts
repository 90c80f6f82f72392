// Every channel type against a real local receiver: an HTTP server checking the JSON each service
// documents, and smtp-server (npm) for email. Sent through the "send test" route and as formatted alerts.
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertDelivery, Channel } from '@dvic/protocol';
import { discord, ntfy, slack, teams, telegram, webhook } from '../../src/alerts/channels/formats.js';
import { buildMessage, testMessage } from '../../src/alerts/message.js';
import type { ChannelRecord } from '../../src/repositories/alert-channels-repository.js';
import { startReceiver, type Receiver } from '../support/http-receiver.mjs';
import { startTestServer, waitFor, type TestServer } from '../support/test-server.js';

let server: TestServer;
let receiver: Receiver;

beforeAll(async () => {
  server = await startTestServer({ DVIC_ALERT_RETRY_BASE_MS: '20', DVIC_ALERT_DELIVERY_ATTEMPTS: '2', DVIC_ALERT_DELIVERY_TIMEOUT_MS: '300' });
  receiver = await startReceiver({ status: (r) => (r.path.includes('refuse') ? 401 : r.path.includes('busy') ? 429 : r.path.includes('hang') ? 0 : 200) });
}, 60_000);
afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

async function sendTest(body: object): Promise<AlertDelivery> {
  const created = await server.api('POST', '/api/v1/channels', body);
  expect(created.statusCode, created.body).toBe(201);
  const { id } = created.json<{ channel: Channel }>().channel;
  expect((await server.api('POST', `/api/v1/channels/${id}/test`)).statusCode).toBe(202);
  const last = async () => (await server.api('GET', '/api/v1/channels')).json<{ channels: Channel[] }>().channels.find((c) => c.id === id)!.last_delivery;
  const done = await waitFor(async () => { const d = await last(); return d && d.status !== 'pending' ? d : null; }, 10_000);
  await server.api('DELETE', `/api/v1/channels/${id}`);
  return done;
}
const TITLE = 'Test message from DVIC Demo Monitor to';

describe('channels', () => {
  it('webhook: the documented AlertWebhook JSON', async () => {
    expect(await sendTest({ type: 'webhook', name: 'generic', url: `${receiver.url}/generic` })).toMatchObject({ status: 'sent', status_code: 200, attempts: 1 });
    const r = receiver.received.find((x) => x.path === '/generic')!;
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-dvic-signature']).toBeUndefined();
    expect(r.json).toEqual({ version: 1, event: 'test', title: `${TITLE} generic`, text: `${TITLE} generic: alerts will arrive here.`, alerts: [], sent_at: expect.any(Number) });
  });

  it('a test message whose request rolls back is neither shown, stored nor sent', async () => {
    const created = await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'rolled-back', url: `${receiver.url}/rolled-back` });
    const { id } = created.json<{ channel: Channel }>().channel;
    const { sql, alerts } = server.app;
    const channel = alerts.config.channel(id);
    await expect(sql.transaction(async () => {
      await alerts.deliveries.deliver(channel, testMessage('rolled-back', Date.now()), [], { inTransaction: true });
      throw new Error('the audit entry could not be written');
    })).rejects.toThrow('the audit entry could not be written');
    expect(alerts.deliveries.lastOf(id)).toBeNull();
    expect(await alerts.deliveries.list(id, 10)).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.received.filter((x) => x.path === '/rolled-back')).toEqual([]);
    await server.api('DELETE', `/api/v1/channels/${id}`);
  });

  it('a receiver that never answers: each attempt gives up after the timeout, logged', async () => {
    const hung = await sendTest({ type: 'webhook', name: 'hung', url: `${receiver.url}/hang` });
    expect(hung).toMatchObject({ status: 'failed', status_code: null, attempts: 2, error: 'could not reach the receiver: no answer within 300 ms' });
    const gone = await startReceiver();
    await gone.close();
    const closed = await sendTest({ type: 'slack', name: 'closed', url: `${gone.url}/x` });
    expect(closed).toMatchObject({ status: 'failed', error: 'could not reach the receiver: ECONNREFUSED' });
  });

  it('a refusal of the request itself (4xx) is not retried; a timeout (408) or rate limit (429) is', async () => {
    expect(await sendTest({ type: 'webhook', name: 'refused', url: `${receiver.url}/refuse` })).toMatchObject({ status: 'failed', status_code: 401, attempts: 1 });
    expect(await sendTest({ type: 'webhook', name: 'busy', url: `${receiver.url}/busy` })).toMatchObject({ status: 'failed', status_code: 429, attempts: 2 });
  });

  it('a rule that names its channels notifies only those; a channel changed keeps its secret unless told', async () => {
    const other = await startReceiver();
    try {
      const only = (await server.api('POST', '/api/v1/channels', { type: 'webhook', name: 'only', url: `${other.url}/only`, secret: 's3cret' })).json<{ channel: Channel }>().channel;
      const patched = await server.api('PATCH', `/api/v1/channels/${only.id}`, { name: 'only-renamed' });
      expect(patched.json<{ channel: Channel }>().channel).toMatchObject({ name: 'only-renamed', has_secret: true });
      expect((await server.api('PATCH', `/api/v1/channels/${only.id}`, { secret: null })).json<{ channel: Channel }>().channel.has_secret).toBe(false);
      expect((await server.api('PATCH', `/api/v1/channels/${only.id}`, { url: 'gopher://x' })).statusCode).toBe(400);
      const rule = await server.api('POST', '/api/v1/alert-rules', { name: 'hot', kind: 'temperature', threshold: 50, channels: [only.id] });
      expect(rule.statusCode, rule.body).toBe(201);
      const { config } = await server.enroll('pi-warm');
      const { connectAgent } = await import('../support/simulated-agent.mjs');
      const agent = await connectAgent({ url: server.agentUrl, nodeId: config.node_id, privateKeyPem: config.private_key, capabilities: ['hardware'] });
      agent.sendHardware({ temperatures: [{ sensor: 't0', source: 'thermal', celsius: 60 }] });
      const got = await other.waitFor((r) => r.path === '/only');
      expect((got.json as { title: string }).title).toBe('pi-warm is at 60 °C (t0)');
      await new Promise((r) => setTimeout(r, 1500));
      expect(receiver.received.some((r) => JSON.stringify(r.json).includes('pi-warm'))).toBe(false);
      agent.close();
    } finally {
      await other.close();
    }
  });

  it('a channel sent elsewhere (url, email host or port) drops its secret unless the same request sends one', async () => {
    const other = await startReceiver();
    const ids: string[] = [];
    const create = async (body: object) => {
      const created = await server.api('POST', '/api/v1/channels', body);
      expect(created.statusCode, created.body).toBe(201);
      const { channel } = created.json<{ channel: Channel }>();
      ids.push(channel.id);
      return channel;
    };
    const patch = (id: string, body: object) => server.api('PATCH', `/api/v1/channels/${id}`, body);
    try {
      const hook = await create({ type: 'webhook', name: 'signed', url: `${receiver.url}/signed`, secret: 'hmac-key' });
      expect((await patch(hook.id, { url: `${other.url}/attacker` })).json<{ channel: Channel }>().channel.has_secret).toBe(false);
      expect((await server.api('POST', `/api/v1/channels/${hook.id}/test`)).statusCode).toBe(202);
      expect((await other.waitFor((r) => r.path === '/attacker')).headers['x-dvic-signature']).toBeUndefined();

      const tg = await create({ type: 'telegram', name: 'tg-moved', secret: '123456:KEEP-me', chat_id: '1' });
      const moved = await patch(tg.id, { url: other.url });
      expect(moved.statusCode).toBe(400);
      expect(moved.json<{ error: { message: string } }>().error.message).toContain('bot token');
      expect((await patch(tg.id, { url: other.url, secret: '123456:NEW-token' })).statusCode).toBe(200);
      expect((await patch(tg.id, { chat_id: '2' })).json<{ channel: Channel }>().channel.has_secret).toBe(true);

      const email = { host: '127.0.0.1', port: 2525, secure: false, user: 'dvic', from: 'dvic@lab.test', to: ['a@lab.test'] };
      const mail = await create({ type: 'email', name: 'mail-moved', email, secret: 'smtp-pass' });
      expect((await patch(mail.id, { email: { ...email, to: ['b@lab.test'] } })).json<{ channel: Channel }>().channel.has_secret).toBe(true);
      expect((await patch(mail.id, { email: { ...email, port: 2526 } })).json<{ channel: Channel }>().channel.has_secret).toBe(false);
      expect((await patch(mail.id, { email: { ...email, host: 'smtp.evil.test' }, secret: 'pw2' })).json<{ channel: Channel }>().channel.has_secret).toBe(true);
      expect((await patch(mail.id, { email: { ...email, host: 'smtp.other.test' } })).json<{ channel: Channel }>().channel.has_secret).toBe(false);
    } finally {
      for (const id of ids) await server.api('DELETE', `/api/v1/channels/${id}`);
      await other.close();
    }
  });

  it('Discord: an execute-webhook body with one embed and no mentions', async () => {
    expect(await sendTest({ type: 'discord', name: 'disc', url: `${receiver.url}/api/webhooks/1/abc` })).toMatchObject({ status: 'sent' });
    expect(receiver.received.find((x) => x.path === '/api/webhooks/1/abc')!.json).toEqual({
      username: 'DVIC Demo Monitor', allowed_mentions: { parse: [] },
      embeds: [{ title: `${TITLE} disc`, description: `${TITLE} disc: alerts will arrive here.`, color: 0x1d76db, timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }],
    });
  });

  it('Slack: an incoming-webhook {"text"}', async () => {
    expect(await sendTest({ type: 'slack', name: 'sl', url: `${receiver.url}/services/T0/B0/x` })).toMatchObject({ status: 'sent' });
    expect(receiver.received.find((x) => x.path === '/services/T0/B0/x')!.json).toEqual({ text: `${TITLE} sl: alerts will arrive here.` });
  });

  it('ntfy: published as JSON to the server root, with the topic in the body', async () => {
    expect(await sendTest({ type: 'ntfy', name: 'nt', url: `${receiver.url}/lab-alerts` })).toMatchObject({ status: 'sent' });
    const r = receiver.received.find((x) => (x.json as { topic?: string }).topic === 'lab-alerts')!;
    expect(r.path).toBe('/');
    expect(r.json).toEqual({ topic: 'lab-alerts', title: `${TITLE} nt`, message: `${TITLE} nt: alerts will arrive here.`, tags: ['bell'], priority: 3 });
  });

  it('Telegram: sendMessage on the Bot API with the chat id; a refusal is logged without the token', async () => {
    expect(await sendTest({ type: 'telegram', name: 'tg', url: receiver.url, secret: '123456:ABC-def', chat_id: '-100200' })).toMatchObject({ status: 'sent' });
    expect(receiver.received.find((x) => x.path === '/bot123456:ABC-def/sendMessage')!.json).toEqual({
      chat_id: '-100200', text: `${TITLE} tg: alerts will arrive here.`, disable_web_page_preview: true,
    });
    const refused = await sendTest({ type: 'telegram', name: 'tg2', url: `${receiver.url}/refuse`, secret: '999:SECRET-token', chat_id: '1' });
    expect(refused).toMatchObject({ status: 'failed', status_code: 401, attempts: 1 });
    expect(refused.error).not.toContain('SECRET-token');
  });

  it('Teams: a message with one Adaptive Card', async () => {
    expect(await sendTest({ type: 'teams', name: 'ms', url: `${receiver.url}/workflows/teams` })).toMatchObject({ status: 'sent' });
    expect(receiver.received.find((x) => x.path === '/workflows/teams')!.json).toEqual({
      type: 'message',
      attachments: [{
        contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', type: 'AdaptiveCard', version: '1.4',
          body: [
            { type: 'TextBlock', text: `${TITLE} ms`, weight: 'Bolder', size: 'Medium', wrap: true, color: 'Attention' },
            { type: 'TextBlock', text: `${TITLE} ms: alerts will arrive here.`, wrap: true },
          ],
        },
      }],
    });
  });

  it('email: over SMTP (smtp-server), with authentication', async () => {
    const mails: { from: string; to: string[]; data: string; user: string | undefined }[] = [];
    const smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'], allowInsecureAuth: true, logger: false,
      onAuth: (auth, _session, cb) => (auth.password === 'smtp-pass' ? cb(null, { user: auth.username }) : cb(new Error('bad password'))),
      onData: (stream, session, cb) => {
        let data = '';
        stream.on('data', (c: Buffer) => { data += c.toString(); });
        stream.on('end', () => {
          mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data, user: session.user as string | undefined });
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const port = (smtp.server.address() as { port: number }).port;
    try {
      const email = { host: '127.0.0.1', port, secure: false, user: 'dvic', from: 'dvic@lab.test', to: ['staff@lab.test', 'oncall@lab.test'] };
      expect(await sendTest({ type: 'email', name: 'mail', email, secret: 'smtp-pass' })).toMatchObject({ status: 'sent', status_code: 250 });
      expect(mails).toHaveLength(1);
      expect(mails[0]).toMatchObject({ from: 'dvic@lab.test', to: ['staff@lab.test', 'oncall@lab.test'], user: 'dvic' });
      expect(mails[0]!.data).toContain(`Subject: [DVIC] ${TITLE} mail`);
      expect(mails[0]!.data).toContain('alerts will arrive here.');
      const refused = await sendTest({ type: 'email', name: 'mail2', email, secret: 'wrong' });
      expect(refused).toMatchObject({ status: 'failed', attempts: 2, error: expect.stringMatching(/^SMTP: /) });
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});

describe('channel formats of an alert (pure)', () => {
  const channel: ChannelRecord = { id: 'c', type: 'webhook', name: 'c', url: 'http://127.0.0.1:9/x', secret: null, chatId: '5', email: null, enabled: true, createdAt: 0 };
  const alert = {
    id: '00000000-0000-4000-8000-000000000001', rule_id: '00000000-0000-4000-8000-000000000002', rule_name: 'Demo crashed', kind: 'demo_crashed' as const,
    severity: 'critical' as const, state: 'firing' as const, summary: 'kiosk <@everyone> crashed on pi & co', value: null,
    subject: { type: 'demo' as const, node_id: '00000000-0000-4000-8000-000000000003', node_name: 'pi', demo: 'kiosk', device_id: null, device_name: null },
    last_lines: ['ERROR camera lost'], started_at: 1000, resolved_at: null, flapping: false, muted: false, acked_at: null, acked_by: null, notified_at: 1000,
  };
  const message = buildMessage('firing', [{ kind: 'firing', alert, rule: {} as never, key: 'k' }], 61_000);

  it('the webhook body names the node, the demo, the rule, firing, its duration and last lines', () => {
    expect(JSON.parse(webhook(channel, message).body).alerts[0]).toEqual({
      id: alert.id, rule: { id: alert.rule_id, name: 'Demo crashed', kind: 'demo_crashed' }, state: 'firing', severity: 'critical',
      node: { id: alert.subject.node_id, name: 'pi' }, demo: 'kiosk', device: null, summary: alert.summary, value: null,
      last_lines: ['ERROR camera lost'], started_at: 1000, resolved_at: null, duration_s: 60,
    });
  });

  it('Slack text escapes &, < and >; Discord mentions nobody; long text is cut to each service\'s limit', () => {
    expect(JSON.parse(slack(channel, message).body).text).toContain('kiosk &lt;@everyone&gt; crashed on pi &amp; co');
    const long = { ...message, text: 'x'.repeat(10_000) };
    const embed = JSON.parse(discord(channel, long).body);
    expect(embed.allowed_mentions).toEqual({ parse: [] });
    expect(embed.embeds[0].description).toHaveLength(4096);
    expect(JSON.parse(telegram({ ...channel, type: 'telegram', secret: '1:a' }, long).body).text).toHaveLength(4096);
    expect(JSON.parse(ntfy({ ...channel, url: 'https://ntfy.example/sub/topic' }, message).body)).toMatchObject({ topic: 'topic', priority: 5, tags: ['rotating_light'] });
    expect(ntfy({ ...channel, url: 'https://ntfy.example/sub/topic' }, message).url).toBe('https://ntfy.example/sub/');
    expect(JSON.parse(teams(channel, message).body).attachments[0].content.body[1].text).toContain('ERROR camera lost');
  });
});
