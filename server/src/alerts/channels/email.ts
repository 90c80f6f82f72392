import nodemailer from 'nodemailer';
import type { ChannelRecord } from '../../repositories/alert-channels-repository.js';
import type { AlertMessage } from '../message.js';
import { DeliveryError } from './http-post.js';

/** Sends the message by SMTP (nodemailer); answers the SMTP reply code (250). */
export async function sendEmail(c: ChannelRecord, m: AlertMessage, timeoutMs: number): Promise<number> {
  const settings = c.email;
  if (!settings) throw new DeliveryError('the email channel has no SMTP settings', null);
  const transport = nodemailer.createTransport({
    host: settings.host, port: settings.port, secure: settings.secure,
    ...(settings.user ? { auth: { user: settings.user, pass: c.secret ?? '' } } : {}),
    connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs,
  });
  try {
    const info = await transport.sendMail({ from: settings.from, to: settings.to, subject: `[DVIC] ${m.title}`, text: m.text });
    return Number(/^(\d{3})/.exec(info.response)?.[1] ?? 250);
  } catch (err) {
    const code = (err as { responseCode?: number }).responseCode ?? null;
    throw new DeliveryError(`SMTP: ${(err as Error).message}`, code);
  } finally {
    transport.close();
  }
}
