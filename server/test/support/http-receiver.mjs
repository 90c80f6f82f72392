// A local HTTP receiver standing in for a webhook service (Discord, Slack, ntfy, ...): records every
// request on loopback and answers the status a test chooses. Plain JavaScript: benches use it too.
import http from 'node:http';

/** Starts a receiver on an ephemeral loopback port. */
export async function startReceiver(options = {}) {
  const received = [];
  const waiters = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try { json = JSON.parse(body); } catch { /* not JSON: kept as text */ }
      const entry = { method: req.method, path: req.url, headers: req.headers, body, json, at: Date.now() };
      received.push(entry);
      const status = options.status ? options.status(entry, received.length) : 200;
      for (const w of [...waiters]) w();
      // 0: never answers (a receiver that hangs).
      if (status === 0) return;
      res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : '{"error":"refused by the test"}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    /** The first request (from index `from`) matching the predicate, waiting for it (bounded). */
    waitFor(predicate, timeoutMs = 10_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = received.slice(from).find(predicate);
          if (!hit) return false;
          cleanup();
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`no matching request within ${timeoutMs} ms; got ${JSON.stringify(received.map((r) => r.json?.title ?? r.body.slice(0, 80)))}`)); }, timeoutMs);
        const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
