import type { ChannelRecord } from '../../repositories/alert-channels-repository.js';
import type { AlertMessage } from '../message.js';
import { sendEmail } from './email.js';
import { HTTP_FORMATS } from './formats.js';
import { post } from './http-post.js';

export { DeliveryError } from './http-post.js';

/** Sends one message to one channel; answers the status code, throws a DeliveryError. */
export function sendTo(channel: ChannelRecord, message: AlertMessage, timeoutMs: number): Promise<number> {
  if (channel.type === 'email') return sendEmail(channel, message, timeoutMs);
  return post(HTTP_FORMATS[channel.type](channel, message), timeoutMs);
}
