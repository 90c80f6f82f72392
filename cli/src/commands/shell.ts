import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { call } from '@dvic/client';
import { CloseCode, type TerminalServerEvent, type TerminalViewerEvent } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';

const USAGE = 'usage: dvic shell <node> [--user NAME]';

/** A login shell on the node in this terminal: raw mode, window size followed, exit code kept. */
export async function shell(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { user: { type: 'string' } }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nOpens a terminal on the node (through the server). Exit the shell to come back.`), 0;
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const server = connection(ctx);
  // Looked up first: an unknown or ambiguous reference is told with the server's candidates.
  const { node } = await call(server.api.GET('/api/v1/nodes/{id}', { params: { path: { id: positionals[0]! } } }));
  const out = ctx.stdout as NodeJS.WriteStream;
  const size = () => ({ cols: out.columns || 80, rows: out.rows || 24 });
  const query = new URLSearchParams({ cols: String(size().cols), rows: String(size().rows), ...(values.user ? { user: values.user as string } : {}) });
  const ws = new WebSocket(server.wsUrl(`/api/v1/nodes/${node.id}/terminal?${query}`), { headers: server.authHeaders, perMessageDeflate: false });
  const send = (event: TerminalViewerEvent) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(event));
  const stdin = ctx.stdin;
  const raw = Boolean(stdin.isTTY && stdin.setRawMode);
  let exitCode = 1;
  let closedReason = '';

  const onInput = (chunk: Buffer) => ws.readyState === WebSocket.OPEN && ws.send(chunk, { binary: true });
  const onResize = () => send({ type: 'resize', ...size() });
  const restore = () => {
    stdin.removeListener('data', onInput);
    process.removeListener('SIGWINCH', onResize);
    if (raw) {
      stdin.setRawMode!(false);
      outputProcessing(stdin, true);
    }
    stdin.pause();
  };

  return new Promise<number>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      reject(new CliError(res.statusCode === 401 ? 'not signed in: run dvic login' : res.statusCode === 403 ? 'only administrators may open terminals' : `terminal refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (err) => reject(new CliError(`terminal connection failed: ${err.message}`)));
    ws.on('open', () => {
      if (raw) {
        stdin.setRawMode!(true);
        outputProcessing(stdin, false);
      }
      stdin.on('data', onInput);
      stdin.resume();
      process.on('SIGWINCH', onResize);
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const bytes = data as Buffer;
        // Acknowledge once written: the node sends more only as fast as this terminal shows it.
        out.write(bytes, () => send({ type: 'ack', bytes: bytes.length }));
        return;
      }
      const event = JSON.parse(data.toString()) as TerminalServerEvent;
      if (event.type === 'closed') {
        exitCode = event.exit_code ?? 1;
        closedReason = event.reason ?? '';
      }
    });
    ws.on('close', (code, reason) => {
      restore();
      if (code === CloseCode.terminalRefused) return reject(new CliError(`terminal refused: ${reason.toString() || 'the node cannot open one'}`));
      if (code === CloseCode.sessionEnded) return reject(new CliError('the session was ended (signed out, token revoked or user disabled): run dvic login'));
      if (closedReason && closedReason !== 'the shell exited') ctx.stderr.write(`\r\ndvic: terminal closed: ${closedReason}\r\n`);
      resolve(exitCode);
    });
  });
}

/**
 * The remote terminal already turned "\n" into "\r\n": the bytes must reach the screen as they
 * are. Node's raw mode keeps output processing on (ONLCR), so turn it off like ssh does.
 */
function outputProcessing(stdin: Context['stdin'], on: boolean): void {
  spawnSync('stty', [on ? 'opost' : '-opost'], { stdio: [stdin as unknown as NodeJS.ReadStream, 'ignore', 'ignore'] });
}
