import { useState } from 'preact/hooks';
import { bytes, celsius, duration, memoryPercent, percent, untrustedReason, type DemoView, type HardwareState, type NodeView } from '@dvic/protocol/shared';
import { api, call, errorText } from '../api/client.js';
import { AgentBehind } from '../components/agent-behind.js';
import { ErrorNotice } from '../components/error-notice.js';
import { StatusBadge } from '../components/status.js';
import { dateTime } from '../format.js';
import { onLink } from '../router.js';
import { useNodePage, type PageNode } from '../state/use-node-page.js';
import { useShippedAgent } from '../state/use-agent-release.js';
import { useNodes } from '../state/use-live.js';
import { AgentHealth } from './agent-health.js';
import { NodeMetrics } from './node-metrics.js';
import { useNow } from './overview.js';
import { MuteButton } from '../components/mute-button.js';

/** The page of one node; its address takes an id, a name or an id prefix, which the server resolves. */
export function NodeDetail({ nodeId: ref }: { nodeId: string }) {
  const state = useNodes();
  const now = useNow();
  const shipped = useShippedAgent();
  const page = useNodePage(ref);
  const live = state.byId.get(page.node?.id ?? ref)?.node;
  const node: PageNode | null = live ? { ...live, demos: page.node?.demos } : page.node;

  // An error before the node was fetched is shown; one of a later refetch leaves the page as it is.
  if (!page.node && page.error) return <ErrorNotice error={page.error} fallback="this node cannot be shown" />;
  if (!node) return <p class="muted">Loading…</p>;
  const hw = node.hardware;
  return (
    <section class="detail" aria-labelledby="node-title">
      <div class="toolbar">
        <h1 id="node-title">{node.name}</h1>
        <StatusBadge status={node.status} since={node.status_since} now={now} />
        <span class="spacer" />
        <MuteButton target={{ node: node.id }} what={node.name} />
        <a class="button" href={`/logs?node=${node.id}`} onClick={(e) => onLink(e, `/logs?node=${node.id}`)}>Logs</a>
        <a class="button" href={`/commands?node=${node.id}`} onClick={(e) => onLink(e, `/commands?node=${node.id}`)}>Run a command</a>
        <a class="button primary" href={`/nodes/${node.id}/terminal`} onClick={(e) => onLink(e, `/nodes/${node.id}/terminal`)}>Open a terminal</a>
      </div>
      <NodeEditor node={node} onChange={page.edited} />
      <dl class="facts">
        <dt>Host</dt><dd>{node.host ? `${node.host.hostname} · ${node.host.os} · kernel ${node.host.kernel} ${node.host.arch}` : '–'}</dd>
        <dt>CPU</dt><dd>{node.host?.cpu_model ?? '–'} ({node.host?.cpu_count ?? '?'} cores)</dd>
        <dt>Agent</dt><dd>{node.agent_version ?? '–'} <AgentBehind nodeId={node.id} version={node.agent_version} shipped={shipped} /></dd>
        <dt>Last seen</dt><dd>{node.last_seen ? `${dateTime(node.last_seen)} (${duration(now - node.last_seen)} ago)` : 'never'}</dd>
        {hw && <><dt>Uptime</dt><dd>{duration(hw.uptime_s * 1000)} · load {hw.load.load1} {hw.load.load5} {hw.load.load15} · {hw.processes} processes</dd></>}
        {hw && <><dt>Memory</dt><dd>{bytes(hw.memory.used_bytes)} used of {bytes(hw.memory.total_bytes)} ({percent(memoryPercent(hw))}); swap {bytes(hw.memory.swap_used_bytes)} of {bytes(hw.memory.swap_total_bytes)}</dd></>}
      </dl>
      <NodeMetrics node={node} />
      {hw && <HardwareTables hw={hw} />}
      <AgentHealth status={node.agent_status} now={now} />
      {node.demos ? <Demos demos={node.demos} now={now} /> : <p class="muted">Loading its demos…</p>}
    </section>
  );
}

function HardwareTables({ hw }: { hw: HardwareState }) {
  return (
    <div class="grid2">
      <table><caption>CPU cores</caption><thead><tr><th>Core</th><th>Use</th></tr></thead>
        <tbody>{hw.cpu.per_core_pct.map((p, i) => <tr key={i}><td>{i}</td><td><meter min={0} max={100} value={p} aria-label={`core ${i}`} /> {percent(p)}</td></tr>)}</tbody></table>
      <table><caption>Filesystems</caption><thead><tr><th>Mount</th><th>Type</th><th>Used</th><th>Size</th></tr></thead>
        <tbody>{hw.filesystems.map((f) => <tr key={f.mount}><td>{f.mount}</td><td>{f.fstype}</td><td>{bytes(f.used_bytes)} ({percent((100 * f.used_bytes) / (f.size_bytes || 1))})</td><td>{bytes(f.size_bytes)}</td></tr>)}</tbody></table>
      <table><caption>Sensors</caption><thead><tr><th>Sensor</th><th>Chip</th><th>Label</th><th>Temp</th></tr></thead>
        <tbody>{hw.temperatures.length ? hw.temperatures.map((t) => <tr key={t.sensor}><td>{t.sensor}</td><td>{t.chip}</td><td>{t.label ?? ''}</td><td>{celsius(t.celsius)}</td></tr>) : <tr><td colSpan={4} class="muted">no temperature sensor on this machine</td></tr>}</tbody></table>
      <table><caption>Network</caption><thead><tr><th>Interface</th><th>Receive</th><th>Send</th></tr></thead>
        <tbody>{hw.network.map((i) => <tr key={i.iface}><td>{i.iface}</td><td>{bytes(i.rx_bytes_per_s)}/s</td><td>{bytes(i.tx_bytes_per_s)}/s</td></tr>)}</tbody></table>
    </div>
  );
}

function Demos({ demos, now }: { demos: DemoView[]; now: number }) {
  return (
    <table class="demos"><caption>Demos</caption>
      <thead><tr><th>Demo</th><th>State</th><th>PID</th><th>User</th><th>Container</th><th>Lines</th><th>Errors</th><th>Last line</th><th>Trust</th></tr></thead>
      <tbody>
        {demos.length === 0 && <tr><td colSpan={9} class="muted">No demo has written a log on this node yet.</td></tr>}
        {demos.map((d) => (
          <tr key={d.token} data-demo={d.demo} class={d.trusted ? '' : 'untrusted'}>
            <td><a href={`/logs?node=${d.node_id}&demo=${encodeURIComponent(d.demo)}`} onClick={(e) => onLink(e, `/logs?node=${d.node_id}&demo=${encodeURIComponent(d.demo)}`)}>{d.demo}</a></td>
            <td><StatusBadge status={d.alive ? 'alive' : 'dead'} since={d.since} now={now} /></td>
            <td>{d.pid}</td><td>{d.user ?? ''}</td><td>{d.container?.name ?? d.container?.id?.slice(0, 12) ?? ''}</td>
            <td>{d.line_count}</td><td>{d.error_count}</td><td>{d.last_line_at ? `${duration(now - d.last_line_at)} ago` : '–'}</td>
            <td>{d.trusted ? 'ok' : <span class="untrusted-note" data-testid="untrusted">⚠ untrusted: {untrustedReason(d)}</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function NodeEditor({ node, onChange }: { node: PageNode; onChange: (n: NodeView) => void }) {
  const [message, setMessage] = useState('');
  const path = { params: { path: { id: node.id } } };
  const run = async (action: () => Promise<{ node: NodeView }>, done: string) => {
    try {
      onChange((await action()).node);
      setMessage(done);
    } catch (err) {
      setMessage(errorText(err, 'failed'));
    }
  };
  const rename = (e: Event) => {
    e.preventDefault();
    const name = new FormData(e.currentTarget as HTMLFormElement).get('name') as string;
    void run(() => call(api.PATCH('/api/v1/nodes/{id}', { ...path, body: { name } })), `Renamed to ${name}.`);
  };
  const relabel = (e: Event) => {
    e.preventDefault();
    const text = new FormData(e.currentTarget as HTMLFormElement).get('labels') as string;
    const labels = Object.fromEntries(text.split(',').map((p) => p.trim()).filter(Boolean).map((p) => [p.split('=')[0]!.trim(), p.split('=').slice(1).join('=').trim()]));
    void run(() => call(api.PATCH('/api/v1/nodes/{id}', { ...path, body: { labels } })), 'Labels saved.');
  };
  const revoke = () => {
    if (confirm(`Revoke ${node.name}? Its agent is disconnected and refused until it is enrolled again.`)) {
      void run(() => call(api.POST('/api/v1/nodes/{id}/revoke', { ...path, body: {} })), `${node.name} is revoked.`);
    }
  };
  return (
    <div class="editor">
      <form onSubmit={rename} key={`name-${node.name}`}><label>Name <input name="name" defaultValue={node.name} required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]*" /></label><button type="submit">Rename</button></form>
      <form onSubmit={relabel} key={`labels-${JSON.stringify(node.labels)}`}><label>Labels <input name="labels" defaultValue={Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(', ')} placeholder="room=hall, kind=pi" /></label><button type="submit">Save labels</button></form>
      <button type="button" class="danger" onClick={revoke} disabled={node.status === 'revoked'}>Revoke</button>
      {message && <p role="status" class="muted">{message}</p>}
    </div>
  );
}
