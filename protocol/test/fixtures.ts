// Protocol-shaped values for unit tests (protocol, dashboard, CLI), typed with the generated types.
import type { CommandView, DemoView, DeviceView, HardwareState, LabDemo, LogRecordView, NodeView, ServerStatus } from '@dvic/protocol/shared';

export const hardware = (cpu: number, temp?: number): HardwareState => ({
  ts: 0, interval_s: 5, host: { hostname: 'h', os: '', kernel: '', arch: '', boot_id: '', agent_version: '' }, uptime_s: 10,
  cpu: { total_pct: cpu, per_core_pct: [cpu] }, load: { load1: 0, load5: 0, load15: 0 },
  memory: { total_bytes: 100, available_bytes: 50, used_bytes: 50, swap_total_bytes: 0, swap_used_bytes: 0 },
  filesystems: [], temperatures: temp === undefined ? [] : [{ sensor: 't', source: 'thermal', celsius: temp }], processes: 1, network: [],
});

export const node = (id: string, name: string, extra: Partial<NodeView> = {}): NodeView => ({
  id, name, labels: {}, agent_config: {}, status: 'online', status_since: 0, last_seen: 0, agent_version: '1', is_local: false,
  created_at: 0, revoked_at: null, host: null, hardware: hardware(10, 40), hardware_at: 0, demo_summary: { total: 0, alive: 0 },
  agent_status: null, ...extra,
});

export const serverStatus = (state: ServerStatus['storage']['state'] = 'ok'): ServerStatus => ({
  version: '0.1.0', storage: { state, since: 0, message: '', free_bytes: 0, min_free_bytes: 0, used_bytes: 0, max_bytes: 0 },
});

export const command = (extra: Partial<CommandView> = {}): CommandView => ({
  id: 'c1', batch_id: null, node_id: 'n1', user: 'admin', source_ip: null, command: 'echo hi', status: 'running', exit_code: null,
  signal: null, stdout: '', stderr: '', truncated: false, error: null, created_at: 0, started_at: null, finished_at: null,
  duration_ms: null, expires_at: null, ...extra,
});

export const demo = (extra: Partial<DemoView> = {}): DemoView => ({
  node_id: 'n1', token: 't1', demo: 'kiosk', pid: 42, user: 'lab', executable: null, argv: null, container: null, alive: true,
  since: 0, started_at: 0, exited_at: null, last_line_at: null, line_count: 0, error_count: 0, file_uid: 1000, trusted: true,
  ended: null, exit_code: null, ...extra,
});

export const logRecord = (id: number, extra: Partial<LogRecordView> = {}): LogRecordView => ({
  id, node_id: 'n1', source: 'demo', demo: 'kiosk', token: 't1', ts: 1000 + id, level: 'INFO', message: `line ${id}`, fields: null, ...extra,
});

export const labDemo = (id: string, name: string, extra: Partial<LabDemo> = {}): LabDemo => ({
  id, node_id: 'n1', name, state: 'running', down: false, expected: false, expected_by: null, schedule: null, in_schedule: true, notes: null, actions: { start: null, stop: null, restart: null },
  restarts: 0, restarts_today: 0, crash_loop: false, started_at: 0, ended_at: null, last_line: null, last_line_at: null, line_count: 0,
  error_count: 0, last_activity_at: 0, runs: [], ...extra,
});

export const device = (id: string, name: string, extra: Partial<DeviceView> = {}): DeviceView => ({
  id, name, labels: {}, node_id: null, period_s: 60, grace_s: 30, status: 'up', status_since: 1, last_seen: 1, last_status: 'ok',
  last_message: null, firmware: null, demo: null, numbers: {}, run_started_at: null, ping_count: 1, created_at: 0, ...extra,
});
