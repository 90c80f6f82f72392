/**
 * @dvic/log: write DVIC demo logs from Node.js.
 *
 *     import { open } from '@dvic/log';
 *     const log = open({ demo: 'kiosk' });
 *     log.info('visitor detected', { zone: 3 });
 *
 * Records go to /tmp/dvic_log_<token> (or $DVIC_LOG_DIR), one JSON line each, written
 * synchronously with one write() on an O_APPEND descriptor: a crash loses nothing and
 * concurrent writers never interleave. Past its size cap the file is renamed
 * dvic_log_<token>.<generation>; the newest maxFiles rotated files are kept. Format:
 * docs/log-format.md of the DVIC repository.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const VERSION = '0.2.0';
export const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export type Level = (typeof LEVELS)[number];
export type Fields = Record<string, string | number | boolean | null>;
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_FILES = 4;

const HEADER_KEYS = ['dvic_log', 'token', 'generation', 'records_before', 'demo', 'pid', 'start_time', 'exe', 'argv',
  'user', 'uid', 'hostname', 'lang', 'lib_version', 'started_at'] as const;

export interface Header {
  dvic_log: 1;
  token: string;
  generation: number;
  /** Records written to the earlier generations (absent in files of libraries before 0.2.0). */
  records_before?: number;
  demo: string;
  pid: number;
  start_time?: number;
  exe: string;
  argv: string[];
  user: string;
  uid: number;
  hostname: string;
  lang: string;
  lib_version: string;
  started_at: string;
}

/** The header line (without newline), keys in the documented order. */
export function formatHeader(header: Header): string {
  const ordered: Record<string, unknown> = {};
  for (const key of HEADER_KEYS) if (header[key] !== undefined) ordered[key] = header[key];
  return JSON.stringify(ordered);
}

/** A record line (without newline): byte-identical to the other DVIC libraries. */
export function formatRecord(ts: string, level: Level, message: string, fields?: Fields): string {
  return JSON.stringify(fields && Object.keys(fields).length ? { ts, level, message, fields } : { ts, level, message });
}

export interface OpenOptions {
  demo: string;
  /** Create the file with mode 0600 instead of 0644. */
  private?: boolean;
  /** Rotate past this size (default 10 MiB). */
  maxBytes?: number;
  /** Rotated files kept (default: $DVIC_LOG_MAX_FILES, else 4). */
  maxFiles?: number;
  /** Default: $DVIC_LOG_DIR, else /tmp. */
  directory?: string;
}

export interface Logger {
  readonly path: string;
  readonly token: string;
  log(level: Level, message: string, fields?: Fields): void;
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  fatal(message: string, fields?: Fields): void;
  /** Ends the log with its closing record (docs/log-format.md): "exited" (with the code when known) or "killed". */
  close(ended?: 'exited' | 'killed', exitCode?: number): void;
}

function startTime(): number | undefined {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/** Rotated files to keep: the program's choice, else $DVIC_LOG_MAX_FILES, else 4. */
export function maxFilesSetting(maxFiles?: number): number {
  if (maxFiles === undefined) {
    const env = process.env.DVIC_LOG_MAX_FILES ?? '';
    return /^[0-9]+$/.test(env) ? Number(env) : DEFAULT_MAX_FILES;
  }
  if (!Number.isInteger(maxFiles) || maxFiles < 0) throw new Error('maxFiles must be an integer >= 0');
  return maxFiles;
}

class FileLogger implements Logger {
  readonly path: string;
  readonly token = crypto.randomBytes(16).toString('base64url');
  private fd: number | null;
  // The live file's generation and records_before, the records and bytes in it, and the oldest
  // rotated generation that may still be on disk (docs/log-format.md, Rotation).
  private generation = 0;
  private recordsBefore = 0;
  private records = 0;
  private size = 0;
  private firstKept = 0;
  private readonly mode: number;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly header: Omit<Header, 'generation' | 'records_before'>;

  constructor(options: OpenOptions) {
    this.mode = options.private ? 0o600 : 0o644;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxFiles = maxFilesSetting(options.maxFiles);
    const directory = options.directory ?? process.env.DVIC_LOG_DIR ?? '/tmp';
    this.path = path.join(directory, `dvic_log_${this.token}`);
    const user = os.userInfo();
    this.header = {
      dvic_log: 1, token: this.token, demo: options.demo, pid: process.pid, start_time: startTime(),
      exe: fs.readlinkSync('/proc/self/exe'), argv: [...process.argv], user: user.username, uid: user.uid,
      hostname: os.hostname(), lang: 'node', lib_version: VERSION, started_at: new Date().toISOString(),
    };
    this.fd = this.create();
  }

  log(level: Level, message: string, fields?: Fields): void {
    if (!LEVELS.includes(level)) throw new Error(`level must be one of ${LEVELS.join(', ')}`);
    if (this.fd === null) throw new Error('log is closed');
    const line = Buffer.from(formatRecord(new Date().toISOString(), level, String(message), fields) + '\n');
    fs.writeSync(this.fd, line);
    this.records++;
    this.size += line.length;
    if (this.size > this.maxBytes) this.rotate();
  }

  trace(message: string, fields?: Fields): void { this.log('TRACE', message, fields); }
  debug(message: string, fields?: Fields): void { this.log('DEBUG', message, fields); }
  info(message: string, fields?: Fields): void { this.log('INFO', message, fields); }
  warn(message: string, fields?: Fields): void { this.log('WARN', message, fields); }
  error(message: string, fields?: Fields): void { this.log('ERROR', message, fields); }
  fatal(message: string, fields?: Fields): void { this.log('FATAL', message, fields); }

  close(ended: 'exited' | 'killed' = 'exited', exitCode?: number): void {
    if (this.fd === null) return;
    try {
      fs.writeSync(this.fd, closingRecord(new Date().toISOString(), ended, exitCode) + '\n');
    } catch {
      // a full disk: the server then sees the demo vanish
    }
    fs.closeSync(this.fd);
    this.fd = null;
    OPEN_LOGGERS.delete(this);
  }

  /** A new live file, never an existing path (O_EXCL), with the header first. */
  private create(): number {
    const { O_WRONLY, O_CREAT, O_EXCL, O_APPEND } = fs.constants;
    const fd = fs.openSync(this.path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, this.mode);
    fs.fchmodSync(fd, this.mode); // the umask must not change who may read the log
    const header = { ...this.header, generation: this.generation, records_before: this.recordsBefore };
    this.size = fs.writeSync(fd, formatHeader(header) + '\n');
    return fd;
  }

  /** The live file becomes .<generation>; the agent finishes it from its open descriptor. */
  private rotate(): void {
    const rotated = this.generation;
    fs.renameSync(this.path, `${this.path}.${rotated}`);
    const old = this.fd!;
    this.generation = rotated + 1;
    this.recordsBefore += this.records;
    this.records = 0;
    this.fd = this.create();
    fs.closeSync(old);
    this.deleteExpired(rotated - this.maxFiles);
  }

  /** Deletes the rotated files up to generation `newest`; the agent may have deleted them. */
  private deleteExpired(newest: number): void {
    for (; this.firstKept <= newest; this.firstKept++) {
      try {
        fs.unlinkSync(`${this.path}.${this.firstKept}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
}

/** The last record of a run: how it ended, so the server tells a clean stop from a crash. */
export function closingRecord(ts: string, ended: 'exited' | 'killed', exitCode?: number): string {
  return formatRecord(ts, 'INFO', `demo ${ended}`, { dvic_end: ended, ...(exitCode === undefined ? {} : { exit_code: exitCode }) });
}

const OPEN_LOGGERS = new Set<FileLogger>();
let watchingExit = false;

/**
 * A normal exit closes every open log with "exited" and its code; SIGTERM with "killed" when the
 * program did not handle SIGTERM itself (then the process still ends by the signal).
 */
function watchExit(): void {
  if (watchingExit) return;
  watchingExit = true;
  process.on('exit', (code) => { for (const log of [...OPEN_LOGGERS]) log.close('exited', code); });
  const onTerm = (): void => {
    if (process.listenerCount('SIGTERM') > 1) return; // the program handles SIGTERM: its exit closes the logs
    for (const log of [...OPEN_LOGGERS]) log.close('killed');
    process.removeListener('SIGTERM', onTerm);
    process.kill(process.pid, 'SIGTERM');
  };
  process.on('SIGTERM', onTerm);
}

/** Creates /tmp/dvic_log_<token> for this demo and returns its logger. */
export function open(options: OpenOptions): Logger {
  const log = new FileLogger(options);
  OPEN_LOGGERS.add(log);
  watchExit();
  return log;
}
