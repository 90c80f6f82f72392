import { call } from '@dvic/client';
import { bytes, celsius, duration, hottest, percent, type HardwareState, type NodeDetailView } from '@dvic/protocol/shared';
import { parse } from '../args.js';
import { connection, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { paint } from '../format/color.js';
import { demoStateCell, lastLineText, NONE, statusCell, trustCell } from '../format/nodes.js';
import { renderTable } from '../format/table.js';
import { timestamp } from '../format/timestamp.js';

const USAGE = 'usage: dvic node <id|id-prefix|name> [--json]';

export async function node(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nHost facts, live hardware state and demos of one node.`), 0;
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const { node: n } = await call(connection(ctx).api.GET('/api/v1/nodes/{id}', { params: { path: { id: positionals[0]! } } }));
  if (values.json) return print(ctx, JSON.stringify({ node: n }, null, 2)), 0;
  print(ctx, describe(n, ctx));
  return 0;
}

function describe(n: NodeDetailView, ctx: Context): string {
  const now = ctx.now();
  const status = statusCell(n, now);
  const lines = [
    `${paint(n.name, 'bold', ctx.color)}  ${paint(status.text, status.color, ctx.color)}  (${n.id})`,
    `labels:     ${Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(', ') || NONE}`,
    `last seen:  ${n.last_seen ? `${timestamp(n.last_seen)} (${duration(now - n.last_seen)} ago)` : 'never'}`,
    `agent:      ${n.agent_version ?? NONE}`,
  ];
  if (n.host) {
    lines.push(`host:       ${n.host.hostname}, ${n.host.os}, kernel ${n.host.kernel} ${n.host.arch}`);
    if (n.host.cpu_model) lines.push(`cpu:        ${n.host.cpu_model} (${n.host.cpu_count ?? '?'} cores)`);
  }
  if (n.hardware) lines.push(...hardware(n.hardware, ctx.color));
  if (n.demos.length) {
    lines.push('', renderTable(['DEMO', 'STATE', 'PID', 'USER', 'LINES', 'ERRORS', 'LAST LINE', 'NOTE'], n.demos.map((d) => [
      d.demo, demoStateCell(d, now), String(d.pid), d.user ?? '', { text: String(d.line_count), align: 'right' },
      { text: String(d.error_count), align: 'right' }, lastLineText(d, now), trustCell(d),
    ]), ctx.color));
  }
  return lines.join('\n');
}

function hardware(hw: HardwareState, color: boolean): string[] {
  const lines = [
    `uptime:     ${duration(hw.uptime_s * 1000)}   load ${hw.load.load1} ${hw.load.load5} ${hw.load.load15}   ${hw.processes} processes`,
    `cpu use:    ${percent(hw.cpu.total_pct, NONE)} total; per core ${hw.cpu.per_core_pct.map((p) => percent(p, NONE)).join(' ')}`,
    `memory:     ${bytes(hw.memory.used_bytes)} used of ${bytes(hw.memory.total_bytes)} (${bytes(hw.memory.available_bytes)} available); swap ${bytes(hw.memory.swap_used_bytes)} of ${bytes(hw.memory.swap_total_bytes)}`,
    `hottest:    ${celsius(hottest(hw), NONE)}`,
    '',
    renderTable(['MOUNT', 'DEVICE', 'TYPE', 'SIZE', 'USED', 'USE%'], hw.filesystems.map((f) => [
      f.mount, f.device ?? '', f.fstype, { text: bytes(f.size_bytes), align: 'right' }, { text: bytes(f.used_bytes), align: 'right' },
      { text: percent(f.size_bytes ? (100 * f.used_bytes) / f.size_bytes : null, NONE), align: 'right' },
    ]), color),
  ];
  if (hw.temperatures.length) {
    lines.push('', renderTable(['SENSOR', 'CHIP', 'LABEL', 'TEMP'], hw.temperatures.map((t) => [t.sensor, t.chip ?? '', t.label ?? '', { text: celsius(t.celsius, NONE), align: 'right' }]), color));
  }
  if (hw.network.length) {
    lines.push('', renderTable(['IFACE', 'RX/s', 'TX/s', 'RX total', 'TX total'], hw.network.map((i) => [
      i.iface, { text: bytes(i.rx_bytes_per_s), align: 'right' }, { text: bytes(i.tx_bytes_per_s), align: 'right' },
      { text: bytes(i.rx_bytes), align: 'right' }, { text: bytes(i.tx_bytes), align: 'right' },
    ]), color));
  }
  return lines;
}
