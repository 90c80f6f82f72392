import type { LogRecordView } from '../generated/types.js';

export type LogLevel = LogRecordView['level'];

/** Log levels, least severe first (the logLevel definition of protocol/schemas/common.json). */
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const satisfies readonly LogLevel[];

/** A level's rank (TRACE 0 ... FATAL 5); an unknown level ranks as TRACE. */
export const levelNumber = (level: string): number => Math.max(0, LOG_LEVELS.indexOf(level as LogLevel));

export const isLogLevel = (text: string): text is LogLevel => (LOG_LEVELS as readonly string[]).includes(text);
