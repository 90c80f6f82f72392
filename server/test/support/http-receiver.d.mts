// Types of http-receiver.mjs.
import type { IncomingHttpHeaders } from 'node:http';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
  at: number;
}

export interface Receiver {
  url: string;
  received: ReceivedRequest[];
  waitFor(predicate: (r: ReceivedRequest) => boolean, timeoutMs?: number, from?: number): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

/** status: the answer's status code for each request; 0 never answers. */
export function startReceiver(options?: { status?: (request: ReceivedRequest, count: number) => number }): Promise<Receiver>;
