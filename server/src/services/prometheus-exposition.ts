import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { DemoRegistry } from '../live/demo-registry.js';
import type { DeviceRegistry } from '../live/device-registry.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { LogWriter } from './log-writer.js';

/**
 * GET /metrics in the Prometheus text format: every node's and demo's latest values under
 * node_exporter-like names with a dvic_ prefix (docs/metrics.md), and the server's own process
 * metrics from prom-client. Values are read from the live registries at each scrape.
 */
export function prometheusRegistry(nodes: NodeRegistry, demos: DemoRegistry, devices: Pick<DeviceRegistry, 'list'>, logs: Pick<LogWriter, 'on'>): Registry {
  const register = new Registry();
  collectDefaultMetrics({ register });
  // prom-client names a few gauges *_total (nodejs_active_handles_total...), which promtool's lint
  // refuses (a _total is a counter): left out.
  for (const metric of register.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    if (name.endsWith('_total') && type !== 'counter') register.removeSingleMetric(name);
  }
  const nodeLabels = ['node', 'name'] as const;
  const gauges = {
    up: new Gauge({ name: 'dvic_node_up', help: 'Whether the node\'s agent is connected (1) or not (0)', labelNames: nodeLabels, registers: [register], collect: () => refresh() }),
    cpu: new Gauge({ name: 'dvic_node_cpu_usage_ratio', help: 'CPU busy over the last sample interval, 0 to 1', labelNames: nodeLabels, registers: [register] }),
    load1: new Gauge({ name: 'dvic_node_load1', help: '1-minute load average', labelNames: nodeLabels, registers: [register] }),
    memTotal: new Gauge({ name: 'dvic_node_memory_total_bytes', help: 'Memory installed', labelNames: nodeLabels, registers: [register] }),
    memAvailable: new Gauge({ name: 'dvic_node_memory_available_bytes', help: 'Memory available (MemAvailable)', labelNames: nodeLabels, registers: [register] }),
    fsSize: new Gauge({ name: 'dvic_node_filesystem_size_bytes', help: 'Filesystem size', labelNames: [...nodeLabels, 'mountpoint'], registers: [register] }),
    fsAvail: new Gauge({ name: 'dvic_node_filesystem_avail_bytes', help: 'Filesystem space available to non-root users', labelNames: [...nodeLabels, 'mountpoint'], registers: [register] }),
    temp: new Gauge({ name: 'dvic_node_temp_celsius', help: 'Temperature of a sensor (hwmon, Raspberry Pi and Jetson thermal zones alike)', labelNames: [...nodeLabels, 'sensor'], registers: [register] }),
    demoUp: new Gauge({ name: 'dvic_demo_up', help: 'Whether the demo process is alive (1) or dead (0)', labelNames: [...nodeLabels, 'demo'], registers: [register] }),
    deviceUp: new Gauge({ name: 'dvic_device_up', help: 'Whether a device reports (1) or not (0)', labelNames: [...nodeLabels, 'device'], registers: [register] }),
  };
  const logLines = new Counter({ name: 'dvic_log_lines_total', help: 'Log lines of a demo stored since the server started, by level', labelNames: [...nodeLabels, 'demo', 'level'], registers: [register] });
  // The label sets counted per node, so a revoked node's go with it (else they would grow forever).
  const counted = new Map<string, Map<string, Record<string, string>>>();
  logs.on('records', (records) => {
    for (const r of records) {
      if (r.source !== 'demo' || !r.demo) continue;
      const labels = { node: r.node_id, name: nodes.view(r.node_id)?.name ?? r.node_id, demo: r.demo, level: r.level.toLowerCase() };
      logLines.inc(labels);
      let ofNode = counted.get(r.node_id);
      if (!ofNode) counted.set(r.node_id, (ofNode = new Map()));
      ofNode.set(`${labels.name}\0${labels.demo}\0${labels.level}`, labels);
    }
  });
  nodes.on('status', ({ node_id, status }) => {
    if (status !== 'revoked') return;
    for (const labels of counted.get(node_id)?.values() ?? []) logLines.remove(labels);
    counted.delete(node_id);
  });

  // Read at scrape time: reset, then set every current value (a removed node leaves no stale series).
  function refresh(): void {
    for (const g of Object.values(gauges)) g.reset();
    for (const node of nodes.list()) {
      const labels = { node: node.id, name: node.name };
      gauges.up.set(labels, node.status === 'online' ? 1 : 0);
      const hw = node.hardware;
      if (hw) {
        gauges.cpu.set(labels, hw.cpu.total_pct / 100);
        gauges.load1.set(labels, hw.load.load1);
        gauges.memTotal.set(labels, hw.memory.total_bytes);
        gauges.memAvailable.set(labels, hw.memory.available_bytes);
        for (const fs of hw.filesystems) {
          gauges.fsSize.set({ ...labels, mountpoint: fs.mount }, fs.size_bytes);
          gauges.fsAvail.set({ ...labels, mountpoint: fs.mount }, fs.avail_bytes);
        }
        for (const t of hw.temperatures) gauges.temp.set({ ...labels, sensor: t.sensor }, t.celsius);
      }
      for (const demo of demos.list(node.id)) {
        gauges.demoUp.set({ ...labels, demo: demo.demo }, demo.alive ? 1 : 0);
      }
    }
    // A device never seen, or paused, has no answer to give: no sample rather than a false 0.
    for (const device of devices.list()) {
      if (device.status === 'new' || device.status === 'paused') continue;
      const parent = device.node_id ? nodes.view(device.node_id) : undefined;
      gauges.deviceUp.set({ node: device.node_id ?? '', name: parent?.name ?? '', device: device.name }, device.status === 'down' ? 0 : 1);
    }
  }
  return register;
}
