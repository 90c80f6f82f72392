import type { DemoView, HardwareState, HostFacts } from './protocol-types.js';

export interface NodeView {
  id: string;
  name: string;
  labels: Record<string, string>;
  status: 'online' | 'offline' | 'revoked';
  status_since: number;
  last_seen: number | null;
  agent_version: string | null;
  is_local: boolean;
  host: HostFacts | null;
  hardware: HardwareState | null;
  hardware_at: number | null;
  demo_summary: { total: number; alive: number };
  demos?: DemoView[];
}

export type { DemoView, HardwareState, HostFacts };
