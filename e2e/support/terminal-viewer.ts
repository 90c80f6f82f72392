// A terminal viewer over a server's relay, as the browser is one: binary frames are the screen,
// each acknowledged once "rendered" (the credit that lets the agent send more).
import WebSocket from 'ws';
import type { TerminalServerEvent } from '@dvic/protocol';
import { waitFor } from './processes.js';

/** A terminal viewer over the server relay, acknowledging what it "renders" like the browser does. */
export function openTerminal(baseUrl: string, cookie: string, nodeId: string, cols = 100, rows = 30) {
  const ws = new WebSocket(`${baseUrl.replace('http', 'ws')}/api/v1/nodes/${nodeId}/terminal?cols=${cols}&rows=${rows}`, { headers: { cookie } });
  let screen = '';
  const events: TerminalServerEvent[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      screen += data.toString();
      ws.send(JSON.stringify({ type: 'ack', bytes: (data as Buffer).length }));
    } else {
      events.push(JSON.parse(data.toString()) as TerminalServerEvent);
    }
  });
  return {
    ws, events,
    get screen() { return screen; },
    type: (text: string) => ws.send(Buffer.from(text)),
    resize: (c: number, r: number) => ws.send(JSON.stringify({ type: 'resize', cols: c, rows: r })),
    until: (pattern: RegExp, timeoutMs = 10_000) => waitFor(() => pattern.test(screen), timeoutMs, `terminal output ${pattern}`)
      .catch((err: Error) => { throw new Error(`${err.message}; screen ends with ${JSON.stringify(screen.slice(-300))}`); }),
  };
}
