// A real `ws` server that stands for one server replica in the agent's failover tests: it sends a
// challenge, checks the hello's signature against the node's key (argv[2], a private key PEM file:
// the test's own throwaway key), answers with a welcome, then prints `hello <node_id>` and keeps
// the link open. Plain HTTP requests (the agent's keepalive relay) are answered `replica <port>`.
// The test kills the process to kill the replica. Prints its port first.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { WebSocketServer } from 'ws';

const publicKey = crypto.createPublicKey(fs.readFileSync(process.argv[2], 'utf8'));
const httpServer = http.createServer((req, res) => {
  const body = `replica ${httpServer.address().port}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body);
});
const server = new WebSocketServer({ server: httpServer });
httpServer.listen(0, '127.0.0.1', () => console.log(httpServer.address().port));
server.on('connection', (ws) => {
  const nonce = crypto.randomBytes(32).toString('base64url');
  ws.send(JSON.stringify({ type: 'challenge', data: { protocol: 1, nonce, expires_in_ms: 10000, server_version: '0.0.0-test' } }));
  ws.once('message', (data) => {
    const hello = JSON.parse(data.toString()).data;
    const signed = Buffer.from(`dvic-agent-auth:v1:${nonce}:${hello.node_id}`);
    if (hello.nonce !== nonce || !crypto.verify(null, signed, publicKey, Buffer.from(hello.signature, 'base64'))) {
      console.log(`refused ${hello.node_id}`);
      return ws.close(4001, 'bad signature');
    }
    ws.send(JSON.stringify({ type: 'welcome', data: { node_id: hello.node_id, name: 'replica-test', protocol: 1, server_version: '0.0.0-test', capabilities: [], config: { metrics_interval_s: 60 } } }));
    console.log(`hello ${hello.node_id}`);
  });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
