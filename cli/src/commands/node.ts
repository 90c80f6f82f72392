import { parse } from '../args.js';
import { client, print, type Context } from '../context.js';
import { UsageError } from '../errors.js';
import { paint } from '../format/color.js';
import { hottest, statusCell, type NodeView } from '../format/nodes.js';
import { renderTable } from '../format/table.js';
import { bytes, celsius, duration, percent, timestamp } from '../format/units.js';
import { resolveNode } from '../resolve-node.js';

const USAGE = 'usage: dvic node <id|id-prefix|name> [--json]';

export async function node(args: string[], ctx: Context): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } }, USAGE);
  if (values.help) return print(ctx, `${USAGE}\n\nHost facts, live hardware state and demos of one node.`), 0;
  if (positionals.length !== 1) throw new UsageError(USAGE);
  const api = client(ctx);
  const { id } = resolveNode((await api.get('/api/v1/nodes')).nodes as NodeView[], positionals[0]!);
  const { node: n } = await api.get(`/api/v1/nodes/${id}`);
  if (values.json) return print(ctx, JSON.stringify({ node: n }, null, 2)), 0;
  print(ctx, describe(n, ctx));
  return 0;
}

function describe(n: NodeView & { demos?: any[] }, ctx: Context): string {
  const now = ctx.now();
  const hw = n.hardware;
  const status = statusCell(n, now);
  const lines = [
    `${paint(n.name, 'bold', ctx.color)}  ${paint(status.text, status.color, ctx.color)}  (${n.id})`,
    `labels:     ${Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}`,
    `last seen:  ${n.last_seen ? `${timestamp(n.last_seen)} (${duration(now - n.last_seen)} ago)` : 'never'}`,
    `agent:      ${n.agent_version ?? '-'}`,
  ];
  if (n.host) {
    lines.push(`host:       ${n.host.hostname}, ${n.host.os}, kernel ${n.host.kernel} ${n.host.arch}`);
    if (n.host.cpu_model) lines.push(`cpu:        ${n.host.cpu_model} (${n.host.cpu_count ?? '?'} cores)`);
  }
  if (!hw) return lines.join('\n');
  lines.push(
    `uptime:     ${duration(hw.uptime_s * 1000)}   load ${hw.load.load1} ${hw.load.load5} ${hw.load.load15}   ${hw.processes} processes`,
    `cpu use:    ${percent(hw.cpu.total_pct)} total; per core ${hw.cpu.per_core_pct.map((p: number) => percent(p)).join(' ')}`,
    `memory:     ${bytes(hw.memory.used_bytes)} used of ${bytes(hw.memory.total_bytes)} (${bytes(hw.memory.available_bytes)} available); swap ${bytes(hw.memory.swap_used_bytes)} of ${bytes(hw.memory.swap_total_bytes)}`,
    `hottest:    ${celsius(hottest(hw))}`,
    '',
    renderTable(['MOUNT', 'DEVICE', 'TYPE', 'SIZE', 'USED', 'USE%'], hw.filesystems.map((f: any) => [
      f.mount, f.device ?? '', f.fstype, { text: bytes(f.size_bytes), align: 'right' }, { text: bytes(f.used_bytes), align: 'right' },
      { text: percent((100 * f.used_bytes) / f.size_bytes), align: 'right' },
    ]), ctx.color),
  );
  if (hw.temperatures.length) {
    lines.push('', renderTable(['SENSOR', 'CHIP', 'LABEL', 'TEMP'], hw.temperatures.map((t: any) => [t.sensor, t.chip ?? '', t.label ?? '', { text: celsius(t.celsius), align: 'right' }]), ctx.color));
  }
  if (hw.network.length) {
    lines.push('', renderTable(['IFACE', 'RX/s', 'TX/s', 'RX total', 'TX total'], hw.network.map((i: any) => [
      i.iface, { text: bytes(i.rx_bytes_per_s), align: 'right' }, { text: bytes(i.tx_bytes_per_s), align: 'right' },
      { text: bytes(i.rx_bytes), align: 'right' }, { text: bytes(i.tx_bytes), align: 'right' },
    ]), ctx.color));
  }
  if (n.demos?.length) {
    lines.push('', renderTable(['DEMO', 'STATE', 'PID', 'USER', 'LINES', 'ERRORS', 'LAST LINE'], n.demos.map((d: any) => [
      d.demo, { text: `${d.alive ? 'alive' : 'dead'} ${duration(now - d.since)}`, color: d.alive ? 'green' : 'red' }, String(d.pid), d.user ?? '',
      { text: String(d.line_count), align: 'right' }, { text: String(d.error_count), align: 'right' }, d.last_line_at ? `${duration(now - d.last_line_at)} ago` : '-',
    ]), ctx.color));
  }
  return lines.join('\n');
}
