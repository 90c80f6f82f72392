// Logs as a user sees them: a real server, a real agent enrolled and online, and every record the
// API returns for a query (all pages). Shared by the log end-to-end tests.
import fs from 'node:fs';
import type { AgentStatus, DemoView, LogRecordView } from '@dvic/protocol';
import { call, enroll, getNode, signIn, type Api } from './api.js';
import { startAgent, startServer, tempDir, waitFor, writeAgentConfig } from './processes.js';

type LogQuery = { demo?: string; source?: 'demo' | 'system' };

/** A real server and a real agent enrolled as `name`, online. env points the libraries at the agent's log directory. */
export async function setupNode(name: string, agentExtra: object = {}, serverEnv: Record<string, string> = {}) {
  const server = await startServer({ env: serverEnv });
  const api = await signIn(server.baseUrl);
  const { node, config } = await enroll(api, name);
  const configPath = writeAgentConfig(tempDir(), config, { metrics_interval_s: 5, ...agentExtra });
  const logDir: string = JSON.parse(fs.readFileSync(configPath, 'utf8')).log_dir;
  const agent = startAgent(configPath);
  await waitFor(async () => (await getNode(api, node.id)).status === 'online', 15_000, 'agent online');
  return { server, api, node, logDir, configPath, agent, env: { DVIC_LOG_DIR: logDir } };
}

/** Every stored record matching the query, oldest first. */
export async function allRecords(api: Api, query: LogQuery): Promise<LogRecordView[]> {
  const out: LogRecordView[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const res: { records: LogRecordView[]; next_cursor: string | null } = await call(api.GET('/api/v1/logs', {
      params: { query: { ...query, limit: 1000, ...(cursor ? { cursor } : {}) } },
    }));
    out.push(...res.records);
    if (!res.next_cursor) break;
    cursor = res.next_cursor;
  }
  return out.reverse();
}

/** Every demo run the server knows, on every node. */
export async function demos(api: Api): Promise<DemoView[]> {
  return (await call(api.GET('/api/v1/demos'))).demos.flatMap((d) => d.runs);
}

/** The demo's records once the server counted at least `count` lines for it. */
export async function waitForCount(api: Api, demo: string, count: number, timeoutMs = 60_000): Promise<LogRecordView[]> {
  return waitFor(async () => {
    const found = (await demos(api)).find((d) => d.demo === demo);
    return found && found.line_count >= count ? allRecords(api, { demo }) : null;
  }, timeoutMs, `${count} lines of ${demo}`);
}

/** The node's agent.status once check accepts it. */
export async function agentStatus(api: Api, nodeId: string, check: (s: AgentStatus) => boolean, what: string): Promise<AgentStatus> {
  return waitFor(async () => {
    const status = (await getNode(api, nodeId)).agent_status;
    return status && check(status) ? status : null;
  }, 15_000, what);
}

/** Records back to lines: a record marked split continues in the next one. */
export function joinSplit(records: LogRecordView[]): string[] {
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
export const lostLines = (record: LogRecordView): number => Number(record.fields?.lost_lines ?? 0);
