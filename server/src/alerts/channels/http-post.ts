/** An HTTP request a chat or webhook channel makes. */
export interface PostRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A delivery that did not go through: the status code when the receiver answered. */
export class DeliveryError extends Error {
  /** final: trying again cannot help (the receiver refused the request itself), so no retry. */
  constructor(message: string, readonly statusCode: number | null, readonly final = false) {
    super(message);
  }
}

/** A refusal of the request itself: 4xx but a timeout (408) or a rate limit (429), which pass. */
const refusesForGood = (status: number): boolean => status >= 400 && status < 500 && status !== 408 && status !== 429;

const ERROR_BODY_CHARS = 200;
/** Bytes of a receiver's answer read at most: the rest is not waited for (a receiver may stream without end). */
const MAX_ANSWER_BYTES = 4096;

/** The start of an answer's body as text, then the rest cancelled. */
async function answerStart(response: Response): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    void reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

/**
 * POSTs and answers the status code; a non-2xx answer or a network error throws a DeliveryError
 * whose message never holds the URL (a Telegram URL carries the bot token).
 */
export async function post(request: PostRequest, timeoutMs: number): Promise<number> {
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: 'POST', headers: { 'user-agent': 'dvic-demo-monitor', ...request.headers }, body: request.body,
      redirect: 'error', signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const name = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : cause?.code ?? cause?.message ?? (err as Error).message;
    throw new DeliveryError(`could not reach the receiver: ${name}`, null);
  }
  const text = await answerStart(response).catch(() => '');
  if (!response.ok) {
    throw new DeliveryError(`HTTP ${response.status}: ${text.slice(0, ERROR_BODY_CHARS) || response.statusText}`, response.status, refusesForGood(response.status));
  }
  return response.status;
}

export const json = (url: string, value: unknown, headers: Record<string, string> = {}): PostRequest =>
  ({ url, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(value) });

/** Cuts text to a service's limit, marking the cut. */
export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
