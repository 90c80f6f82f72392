import { describe, expect, it } from 'vitest';
import type { EnrollmentView } from '@dvic/protocol/shared';
import { newerEnrollment, parseLabelText, stepLines } from '../src/state/enrollment-state.js';

const base: EnrollmentView = {
  id: 'e1', name: 'pi', host: '10.0.0.7', port: 22, username: 'lab', via: 'server', labels: {}, state: 'running', node_id: null,
  host_key_fingerprint: null, error: null, created_at: 1, updated_at: 10,
  steps: [{ name: 'reach_source', status: 'skipped', duration_ms: null }, { name: 'ssh_connect', status: 'ok', duration_ms: 1234 }, { name: 'authenticate', status: 'ok', duration_ms: 87 }],
};

describe('enrollment state', () => {
  it('keeps the newer of the fetched and the live view', () => {
    const older = { ...base, updated_at: 5, state: 'failed' as const };
    expect(newerEnrollment(base, older)).toBe(base);
    expect(newerEnrollment(older, base)).toBe(base);
    expect(newerEnrollment(null, older)).toBe(older);
    const other = { ...base, id: 'e2', updated_at: 1 };
    expect(newerEnrollment(base, other)).toBe(other);
  });

  it('labels steps with their durations', () => {
    expect(stepLines(base).map((l) => [l.label, l.status, l.duration])).toEqual([
      ['Reach the source node', 'skipped', ''], ['SSH connect', 'ok', '1.2 s'], ['Authenticate', 'ok', '87 ms'],
    ]);
  });

  it('reads labels typed as key=value pairs', () => {
    expect(parseLabelText(' room=hall, rack=2 ,')).toEqual({ room: 'hall', rack: '2' });
    expect(parseLabelText('')).toEqual({});
    expect(parseLabelText('room')).toBeNull();
    expect(parseLabelText('=x')).toBeNull();
  });
});
