// Types only: erased at build time, so the dashboard bundle carries no validator.
import type { HardwareState, HostFacts } from '@dvic/protocol';

export type { HardwareState, HostFacts };

export interface DemoView {
  node_id: string;
  token: string;
  demo: string;
  pid: number;
  user: string | null;
  alive: boolean;
  since: number;
  started_at: number | null;
  exited_at: number | null;
  last_line_at: number | null;
  line_count: number;
  error_count: number;
  container: { id?: string; name?: string; runtime?: string } | null;
}
