// Logs as a user sees them: a real server, a real agent enrolled and online, and every record the
// API returns for a query (all pages). Shared by the log end-to-end tests.
import fs from 'node:fs';
import type { Schemas } from '@dvic/client';
import { apiClient, startAgent, startServer, tempDir, waitFor, writeAgentConfig } from './processes.js';

export type Api = Awaited<ReturnType<typeof apiClient>>;
export type LogRecord = Schemas['LogRecord'];
export type NodeDetail = Schemas['NodeDetail'];
export type Demo = Schemas['Demo'];
export type AgentStatus = NonNullable<NodeDetail['agent_status']>;

/** A real server and a real agent enrolled as `name`, online. env points the libraries at the agent's log directory. */
export async function setupNode(name: string, agentExtra: object = {}, serverEnv: Record<string, string> = {}) {
  const server = await startServer({ env: serverEnv });
  const api = await apiClient(server.baseUrl);
  const { node, config } = await api('POST', '/api/v1/nodes', { name });
  const configPath = writeAgentConfig(tempDir(), config, { metrics_interval_s: 5, ...agentExtra });
  const logDir: string = JSON.parse(fs.readFileSync(configPath, 'utf8')).log_dir;
  const agent = startAgent(configPath);
  await waitFor(async () => (await nodeView(api, node.id)).status === 'online', 15_000, 'agent online');
  return { server, api, node: node as NodeDetail, logDir, configPath, agent, env: { DVIC_LOG_DIR: logDir } };
}

/** Every stored record matching the query (e.g. "demo=x" or "source=system"), oldest first. */
export async function allRecords(api: Api, query: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let cursor = '';
  for (let page = 0; page < 1000; page++) {
    const res: { records: LogRecord[]; next_cursor: string | null } = await api('GET', `/api/v1/logs?${query}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...res.records);
    if (!res.next_cursor) break;
    cursor = res.next_cursor;
  }
  return out.reverse();
}

/** Every demo the server knows, on every node. */
export async function demos(api: Api): Promise<Demo[]> {
  return (await api('GET', '/api/v1/demos')).demos;
}

/** The demo's records once the server counted at least `count` lines for it. */
export async function waitForCount(api: Api, demo: string, count: number, timeoutMs = 60_000): Promise<LogRecord[]> {
  return waitFor<LogRecord[] | null>(async () => {
    const found = (await demos(api)).find((d) => d.demo === demo);
    return found && found.line_count >= count ? allRecords(api, `demo=${encodeURIComponent(demo)}`) : null;
  }, timeoutMs, `${count} lines of ${demo}`) as Promise<LogRecord[]>;
}

/** Records back to lines: a record marked split continues in the next one. */
export function joinSplit(records: LogRecord[]): string[] {
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

/** The number of lines a marker record says were lost (0 for an ordinary record). */
export const lostLines = (record: LogRecord): number => Number(record.fields?.lost_lines ?? 0);

/** The node as GET /api/v1/nodes/{id} shows it (agent_status, demos...). */
export async function nodeView(api: Api, nodeId: string): Promise<NodeDetail> {
  return (await api('GET', `/api/v1/nodes/${nodeId}`)).node;
}
