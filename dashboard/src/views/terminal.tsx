import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { CloseCode, type TerminalServerEvent, type TerminalViewerEvent } from '@dvic/protocol/shared';
import { sessionEnded } from '../api/client.js';
import { terminalCloseText } from '../api/live-status.js';
import { onLink } from '../router.js';
import { useNodes } from '../state/use-live.js';

/**
 * A PTY shell on the node in xterm.js. Keystrokes go out as binary frames; output comes back as
 * binary frames and is acknowledged once xterm has drawn it, which is what lets the agent send
 * more: a program printing without end cannot flood the page.
 */
export function TerminalView({ nodeId }: { nodeId: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState('connecting…');
  const node = useNodes().byId.get(nodeId)?.node;
  useEffect(() => {
    const term = new Terminal({ cursorBlink: true, fontFamily: 'ui-monospace, Menlo, Consolas, monospace', fontSize: 14, scrollback: 5000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box.current!);
    fit.fit();
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/nodes/${encodeURIComponent(nodeId)}/terminal?cols=${term.cols}&rows=${term.rows}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const encoder = new TextEncoder();
    const send = (data: Uint8Array | TerminalViewerEvent) => ws.readyState === WebSocket.OPEN && ws.send(data instanceof Uint8Array ? data : JSON.stringify(data));
    ws.onopen = () => setStatus('connected');
    ws.onmessage = (event) => {
      if (typeof event.data === 'string') {
        const message = JSON.parse(event.data) as TerminalServerEvent;
        if (message.type === 'opened') setStatus(`connected · shell pid ${message.pid}`);
        if (message.type === 'closed') setStatus(`closed: ${message.reason}${message.exit_code !== null ? ` (exit code ${message.exit_code})` : ''}`);
        return;
      }
      // Acknowledged once drawn: the agent sends more only as fast as this page shows it.
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      term.write(bytes, () => send({ type: 'ack', bytes: bytes.length }));
    };
    ws.onclose = (event) => {
      if (event.code === CloseCode.sessionEnded) sessionEnded();
      setStatus((s) => (s.startsWith('closed') ? s : `closed: ${terminalCloseText(event.code, event.reason)}`));
    };
    const input = term.onData((data) => send(encoder.encode(data)));
    const binary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
    const resize = term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(box.current!);
    term.focus();
    return () => {
      observer.disconnect();
      input.dispose();
      binary.dispose();
      resize.dispose();
      ws.close();
      term.dispose();
    };
  }, [nodeId]);
  return (
    <section class="terminal-view" aria-label={`Terminal on ${node?.name ?? nodeId}`}>
      <div class="toolbar">
        <h1>Terminal · {node?.name ?? nodeId}</h1>
        <span class="muted" role="status" data-testid="terminal-status">{status}</span>
        <span class="spacer" />
        <a href={`/nodes/${nodeId}`} onClick={(e) => onLink(e, `/nodes/${nodeId}`)}>Back to the node</a>
      </div>
      <div ref={box} class="terminal" />
    </section>
  );
}
