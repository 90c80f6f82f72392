import { describe, expect, it } from 'vitest';
import type { AgentStatus, ServerStatus, StorageStatus } from '@dvic/protocol/shared';
import { agentProblemCount, agentProblemLines, storageBanner } from '../src/state/health.js';

const server = (state: StorageStatus['state'], message = ''): ServerStatus => ({
  version: '0.1.0', storage: { state, since: 0, message, free_bytes: 0, min_free_bytes: 0, used_bytes: 0, max_bytes: 0 },
});

describe('storage banner', () => {
  it('says nothing while the server can store everything', () => {
    expect(storageBanner(null)).toBeNull();
    expect(storageBanner(server('ok'))).toBeNull();
  });

  it('warns when the disk is low and alarms when logs are refused', () => {
    expect(storageBanner(server('low', '1.2 GiB free'))).toEqual({ tone: 'warn', text: "⚠ The server's disk is nearly full: old logs are deleted sooner (1.2 GiB free)." });
    expect(storageBanner(server('full', 'no space left on device'))).toEqual({
      tone: 'bad', text: "⚠ The server's disk is full: new logs are refused, agents keep them until there is room (no space left on device).",
    });
    expect(storageBanner(server('read_only'))!.text).toBe('⚠ The server cannot write to its database: new logs are refused, agents keep them until there is room.');
  });
});

describe('agent problems', () => {
  const status: AgentStatus = {
    workers: [{ name: 'tailer', alive: true, restarts: 2, last_error: 'boom' }, { name: 'exec', alive: false, restarts: 0, last_error: 'gone' }],
    problems: [{ code: 'log_file.owner_mismatch', message: 'log file owned by another user', subject: '/tmp/dvic_log_x', count: 3, since: 0 }],
  };

  it('counts the problems the agent reports and the workers that stopped', () => {
    expect([agentProblemCount(null), agentProblemCount({ workers: [], problems: [] }), agentProblemCount(status)]).toEqual([0, 0, 2]);
  });

  it('lists them in words', () => {
    expect(agentProblemLines(status)).toEqual(['worker exec stopped: gone', 'log file owned by another user (/tmp/dvic_log_x) ×3']);
  });
});
