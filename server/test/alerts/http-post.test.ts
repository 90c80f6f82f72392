// The POST a chat or webhook channel makes, against a real loopback receiver that streams an answer far
// larger than anyone needs: the channel reads its start only and hangs up.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryError, post } from '../../src/alerts/channels/http-post.js';

const CHUNK = Buffer.alloc(64 * 1024, 'x');
/** What the receiver would stream at most (the test stops by itself even if the client read it all). */
const LIMIT = 64 * 1024 * 1024;

interface Streamed { written: number; hungUp: boolean }
let server: http.Server;
let url: string;
const streams: Streamed[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const s: Streamed = { written: 0, hungUp: false };
    streams.push(s);
    req.resume();
    req.on('end', () => {
      res.writeHead(req.url === '/fail' ? 500 : 200, { 'content-type': 'text/plain' });
      res.on('close', () => { s.hungUp = !res.writableFinished; });
      const pump = () => {
        while (s.written < LIMIT && !res.destroyed) {
          s.written += CHUNK.length;
          if (!res.write(CHUNK)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const waitHungUp = async (s: Streamed) => {
  for (let i = 0; i < 200 && !s.hungUp; i++) await new Promise((r) => setTimeout(r, 25));
  return s;
};

describe('a receiver streaming a huge answer', () => {
  it('a refusal: the error quotes the start of the answer and the rest is never read', async () => {
    const err = await post({ url: `${url}/fail`, headers: {}, body: '{}' }, 30_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).statusCode).toBe(500);
    expect((err as DeliveryError).message).toBe(`HTTP 500: ${'x'.repeat(200)}`);
    const s = await waitHungUp(streams.at(-1)!);
    expect(s.hungUp).toBe(true);
    expect(s.written).toBeLessThan(LIMIT);
  });

  it('a success: answered as sent without reading the rest', async () => {
    expect(await post({ url: `${url}/ok`, headers: {}, body: '{}' }, 30_000)).toBe(200);
    const s = await waitHungUp(streams.at(-1)!);
    expect(s.hungUp).toBe(true);
    expect(s.written).toBeLessThan(LIMIT);
  });
});
