import type { DemoSchedule } from '@dvic/protocol';

export type Schedule = DemoSchedule;
type Day = Schedule['days'][number];

const DAYS: Day[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** The weekday, minutes since midnight and date of an instant, in the lab's time zone. */
export interface LabTime {
  day: Day;
  minutes: number;
  /** YYYY-MM-DD in the lab's time zone. */
  date: string;
}

const formats = new Map<string, Intl.DateTimeFormat>();

export function labTime(at: number, timeZone: string): LabTime {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
    formats.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(new Date(at)).map((p) => [p.type, p.value]));
  const day = DAYS.find((d) => d === String(parts.weekday).slice(0, 3).toLowerCase()) ?? 'sun';
  return { day, minutes: Number(parts.hour) * 60 + Number(parts.minute), date: `${parts.year}-${parts.month}-${parts.day}` };
}

/** Whether a time zone name is one this runtime knows. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * Whether the lab is open: on a listed day between open and close. A close before the open
 * runs past midnight (the night belongs to the day it started); no schedule means always.
 */
export function inSchedule(schedule: Schedule | null, at: LabTime): boolean {
  if (!schedule) return true;
  const open = minutesOf(schedule.open);
  const close = minutesOf(schedule.close);
  if (open <= close) return schedule.days.includes(at.day) && at.minutes >= open && at.minutes < close;
  const yesterday = DAYS[(DAYS.indexOf(at.day) + 6) % 7]!;
  return (schedule.days.includes(at.day) && at.minutes >= open) || (schedule.days.includes(yesterday) && at.minutes < close);
}
