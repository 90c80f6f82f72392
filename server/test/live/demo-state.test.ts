import { describe, expect, it } from 'vitest';
import { demo } from '../../../protocol/test/fixtures.js';
import { DEFAULT_POLICY, labDemo, NO_ACTIONS, type DemoSettings } from '../../src/live/demo-state.js';
import { inSchedule, labTime } from '../../src/live/lab-schedule.js';

const policy = { ...DEFAULT_POLICY, timeZone: 'Europe/Paris' };
const settings: DemoSettings = { id: 'd1', node_id: 'n1', name: 'kiosk', expected: false, schedule: null, notes: null, actions: NO_ACTIONS, created_at: 0 };
const ctx = (now: number) => ({ now, nodeRevoked: false, rule: undefined, lastLine: null });

describe('lab schedule', () => {
  it('reads the time in the lab time zone, and opens on the listed days between open and close', () => {
    // 2026-11-23 is a Monday; 08:30 UTC is 09:30 in Paris.
    const at = labTime(Date.UTC(2026, 10, 23, 8, 30), 'Europe/Paris');
    expect(at).toEqual({ day: 'mon', minutes: 9 * 60 + 30, date: '2026-11-23' });
    expect(inSchedule({ days: ['mon'], open: '09:00', close: '18:00' }, at)).toBe(true);
    expect(inSchedule({ days: ['tue'], open: '09:00', close: '18:00' }, at)).toBe(false);
    expect(inSchedule({ days: ['mon'], open: '10:00', close: '18:00' }, at)).toBe(false);
    expect(inSchedule(null, at)).toBe(true);
  });

  it('runs a night schedule past midnight into the next day', () => {
    const night = { days: ['fri' as const], open: '20:00', close: '02:00' };
    expect(inSchedule(night, { day: 'fri', minutes: 23 * 60, date: '' })).toBe(true);
    expect(inSchedule(night, { day: 'sat', minutes: 60, date: '' })).toBe(true);
    expect(inSchedule(night, { day: 'sat', minutes: 3 * 60, date: '' })).toBe(false);
    expect(inSchedule(night, { day: 'fri', minutes: 60, date: '' })).toBe(false);
  });
});

describe('a demo from its runs', () => {
  const now = Date.UTC(2026, 10, 23, 12, 0);
  it('detects a crash loop: more restarts than allowed within the window', () => {
    const runs = Array.from({ length: 7 }, (_, i) => demo({ token: `t${i}`, alive: i === 0, started_at: now - i * 30_000, exited_at: i === 0 ? null : now - i * 30_000 + 20_000, ended: i === 0 ? null : 'vanished' }));
    const view = labDemo(settings, runs, ctx(now), policy);
    expect(view).toMatchObject({ restarts: 6, crash_loop: true, state: 'restarting' });
    expect(labDemo(settings, runs.slice(0, 3), ctx(now), policy).crash_loop).toBe(false);
  });

  it('is stopped after a clean exit, crashed after a non-zero exit code or none, and down only when expected', () => {
    const ended = (e: 'exited' | 'killed' | 'vanished', code: number | null = null) => [demo({ alive: false, started_at: now - 60_000, exited_at: now - 1000, ended: e, exit_code: code })];
    expect(labDemo(settings, ended('exited', 0), ctx(now), policy).state).toBe('stopped');
    expect(labDemo(settings, ended('killed'), ctx(now), policy).state).toBe('stopped');
    expect(labDemo(settings, ended('exited', 1), ctx(now), policy).state).toBe('crashed');
    expect(labDemo(settings, ended('vanished'), ctx(now), policy)).toMatchObject({ state: 'crashed', down: false });
    expect(labDemo({ ...settings, expected: true }, ended('exited', 0), ctx(now), policy)).toMatchObject({ down: true, expected_by: 'demo' });
    expect(labDemo({ ...settings, expected: true }, ended('exited', 0), { ...ctx(now), nodeRevoked: true }, policy).down).toBe(false);
  });
});
