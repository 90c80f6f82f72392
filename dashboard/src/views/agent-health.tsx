import { duration, type AgentStatus } from '@dvic/protocol/shared';
import { agentProblemCount } from '../state/health.js';

/**
 * How the agent itself is doing, as it reports it: its workers (stopped, restarted), the problems
 * it met (skipped or untrusted log files, an unreadable journal...), its log files and system logs.
 */
export function AgentHealth({ status, now }: { status: AgentStatus | null; now: number }) {
  if (!status) return null;
  const problems = agentProblemCount(status);
  return (
    <section class="agent-health" aria-labelledby="agent-health-title">
      <h2 id="agent-health-title">Agent {problems ? <span class="badge warn">⚠ {problems} problem{problems > 1 ? 's' : ''}</span> : <span class="muted">· no problem</span>}</h2>
      <p class="muted">
        {logFilesText(status.log_files)}
        {status.system_logs && <> · system logs: {status.system_logs.mode}{status.system_logs.readable ? '' : <strong class="warn-text"> (unreadable{status.system_logs.message ? `: ${status.system_logs.message}` : ''})</strong>}</>}
      </p>
      <div class="grid2">
        <table class="workers"><caption>Workers</caption><thead><tr><th>Worker</th><th>State</th><th>Restarts</th><th>Last error</th></tr></thead>
          <tbody>{status.workers.map((w) => (
            <tr key={w.name} class={!w.alive ? 'bad' : w.restarts ? 'warn' : ''}><td>{w.name}</td><td>{w.alive ? 'running' : '⚠ stopped'}</td><td>{w.restarts}</td><td>{w.last_error ?? ''}</td></tr>
          ))}</tbody></table>
        <table class="problems"><caption>Problems</caption><thead><tr><th>Problem</th><th>About</th><th>Seen</th><th>Since</th></tr></thead>
          <tbody>
            {status.problems.length === 0 && <tr><td colSpan={4} class="muted">none</td></tr>}
            {status.problems.map((p) => (
              <tr key={`${p.code} ${p.subject ?? ''}`} data-code={p.code}><td>{p.message}</td><td><code>{p.subject ?? ''}</code></td><td>{p.count}×</td><td>{duration(now - p.since)} ago</td></tr>
            ))}
          </tbody></table>
      </div>
    </section>
  );
}

function logFilesText(files: AgentStatus['log_files']): string {
  if (!files) return 'log files: –';
  const parts = [`${files.followed ?? 0} followed`, `${files.open ?? 0}${files.max_open ? ` of ${files.max_open}` : ''} open`];
  if (files.skipped) parts.push(`${files.skipped} skipped`);
  return `log files: ${parts.join(', ')}`;
}
