import WebSocket from 'ws';

/** What a WebSocket upgrade got: 101 with the open socket, or the HTTP status and body of the refusal. */
export type Upgrade = { status: 101; socket: WebSocket } | { status: number; body: { error?: { code?: string; message?: string } } };

/** Tries a WebSocket upgrade with these headers (a browser's Origin, a cookie, a token). */
export function upgrade(url: string, headers: Record<string, string> = {}): Promise<Upgrade> {
  const socket = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    socket.on('open', () => resolve({ status: 101, socket }));
    socket.on('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
    });
    socket.on('error', (err) => reject(err));
  });
}

/** Resolves with the close code and reason of a socket (at once if it is already closed). */
export function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}
