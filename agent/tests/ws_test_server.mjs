// A real `ws` server for the agent's WebSocket client tests. Prints its port, then behaves as the
// first message of each connection asks: "echo" (echo every message), "fragments N" (send one
// N-byte text message as 5 fragments with a ping in between), "big N" (send one N-byte binary
// message), "close CODE REASON" (close with that code), "ping" (ping and report the pong),
// "pings N MS" (N pings MS apart, nothing else: a quiet but live link).
import { WebSocketServer } from 'ws';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
server.on('listening', () => console.log(server.address().port));
server.on('connection', (ws) => {
  let mode = null;
  ws.on('pong', (data) => { if (mode !== 'pings') ws.send(`pong:${data.toString()}`); });
  ws.on('message', (data, isBinary) => {
    if (mode === 'echo') return ws.send(data, { binary: isBinary });
    const [command, ...args] = data.toString().split(' ');
    mode = command;
    if (command === 'echo') return ws.send('ready');
    if (command === 'fragments') {
      const text = 'é'.repeat(Number(args[0]) / 2);
      const buffer = Buffer.from(text);
      const step = Math.ceil(buffer.length / 5);
      for (let i = 0; i < 5; i++) {
        ws.send(buffer.subarray(i * step, (i + 1) * step), { fin: i === 4, binary: false });
        if (i === 2) ws.ping('mid');
      }
      return;
    }
    if (command === 'big') return ws.send(Buffer.alloc(Number(args[0]), 7), { binary: true });
    if (command === 'close') return ws.close(Number(args[0]), args.slice(1).join(' '));
    if (command === 'ping') return ws.ping('are-you-there');
    if (command === 'pings') {
      let left = Number(args[0]);
      const timer = setInterval(() => { ws.ping(); if (--left <= 0) clearInterval(timer); }, Number(args[1]));
      ws.on('close', () => clearInterval(timer));
    }
  });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
