import { describe, expect, it } from 'vitest';
import { ERROR_RATE_MINUTES, ErrorRateHistory } from '../src/state/error-rate.js';
import { labDemo } from '../../protocol/test/fixtures.js';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0);
const MIN = 60_000;

describe('error rate of a demo', () => {
  it('counts the errors that came in each minute since the page opened, oldest first', () => {
    const history = new ErrorRateHistory();
    history.record([labDemo('a', 'kiosk', { error_count: 40 })], T0); // before the page: not a rate
    history.record([labDemo('a', 'kiosk', { error_count: 43 })], T0 + 10_000);
    history.record([labDemo('a', 'kiosk', { error_count: 45 })], T0 + 50_000);
    history.record([labDemo('a', 'kiosk', { error_count: 52 })], T0 + 2 * MIN);
    const rates = history.rates('a', T0 + 2 * MIN);
    expect(rates).toHaveLength(ERROR_RATE_MINUTES);
    expect(rates.slice(-3)).toEqual([5, 0, 7]);
    expect(rates.slice(0, -3).every((r) => r === 0)).toBe(true);
  });

  it('forgets minutes older than the window, and does not count a lower count (runs forgotten) as negative', () => {
    const history = new ErrorRateHistory();
    history.record([labDemo('a', 'kiosk', { error_count: 0 })], T0);
    history.record([labDemo('a', 'kiosk', { error_count: 9 })], T0 + 1000);
    history.record([labDemo('a', 'kiosk', { error_count: 2 })], T0 + 5 * MIN);
    history.record([labDemo('a', 'kiosk', { error_count: 3 })], T0 + 6 * MIN);
    expect(history.rates('a', T0 + 6 * MIN).slice(-7)).toEqual([9, 0, 0, 0, 0, 0, 1]);
    expect(history.rates('a', T0 + (ERROR_RATE_MINUTES + 1) * MIN).reduce((a, b) => a + b)).toBe(1);
    expect(history.rates('unknown', T0)).toEqual(new Array(ERROR_RATE_MINUTES).fill(0));
  });
});
