// Logs as a user sees them: a real server, a real agent enrolled and online, and every record the
// API returns for a query (all pages). Shared by the log end-to-end tests.
import fs from 'node:fs';
import { apiClient, startAgent, startServer, tempDir, waitFor, writeAgentConfig } from './processes.js';

export type Api = Awaited<ReturnType<typeof apiClient>>;

/** A real server and a real agent enrolled as `name`, online. env points the libraries at the agent's log directory. */
export async function setupNode(name: string, agentExtra: object = {}, serverEnv: Record<string, string> = {}) {
  const server = await startServer({ env: serverEnv });
  const api = await apiClient(server.baseUrl);
  const { node, config } = await api('POST', '/api/v1/nodes', { name });
  const configPath = writeAgentConfig(tempDir(), config, { metrics_interval_s: 5, ...agentExtra });
  const logDir: string = JSON.parse(fs.readFileSync(configPath, 'utf8')).log_dir;
  const agent = startAgent(configPath);
  await waitFor(async () => (await api('GET', `/api/v1/nodes/${node.id}`)).node.status === 'online', 15_000, 'agent online');
  return { server, api, node, logDir, configPath, agent, env: { DVIC_LOG_DIR: logDir } };
}

/** Every stored record matching the query (e.g. "demo=x" or "source=system"), oldest first. */
export async function allRecords(api: Api, query: string): Promise<any[]> {
  const out: any[] = [];
  let cursor = '';
  for (let page = 0; page < 1000; page++) {
    const res = await api('GET', `/api/v1/logs?${query}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...res.records);
    if (!res.next_cursor) break;
    cursor = res.next_cursor;
  }
  return out.reverse();
}

/** The demo's records once the server counted at least `count` lines for it. */
export async function waitForCount(api: Api, demo: string, count: number, timeoutMs = 60_000): Promise<any[]> {
  return waitFor<any[] | null>(async () => {
    const { demos } = await api('GET', '/api/v1/demos');
    const found = demos.find((d: any) => d.demo === demo);
    return found && found.line_count >= count ? allRecords(api, `demo=${encodeURIComponent(demo)}`) : null;
  }, timeoutMs, `${count} lines of ${demo}`) as Promise<any[]>;
}

/** Records back to lines: a record marked split continues in the next one. */
export function joinSplit(records: any[]): string[] {
  const lines: string[] = [];
  let current = '';
  for (const r of records) {
    current += r.message;
    if (!r.fields?.split) {
      lines.push(current);
      current = '';
    }
  }
  return lines;
}

/** The node as GET /api/v1/nodes/{id} shows it (agent_status, demos...). */
export async function nodeView(api: Api, nodeId: string): Promise<any> {
  return (await api('GET', `/api/v1/nodes/${nodeId}`)).node;
}
