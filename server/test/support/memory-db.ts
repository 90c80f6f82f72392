import Fastify from 'fastify';
import { openDatabase, type Db } from '../../src/db/database.js';
import { attachSearchIndex } from '../../src/db/log-search-index.js';
import type { NewLogRecord } from '../../src/repositories/logs-repository.js';

/** A migrated in-memory database with an (empty, in-memory) search index: the fastest real store. */
export function memoryDb(): Db {
  const db = openDatabase(':memory:');
  attachSearchIndex(db, ':memory:');
  return db;
}

export const NODE_ID = '0a1b2c3d-0000-4000-8000-000000000001';

/** A demo log record at a byte offset, as a log batch carries it. */
export function newRecord(i: number, message = `line ${i}`, extra: Partial<NewLogRecord> = {}): NewLogRecord {
  return {
    nodeId: NODE_ID, source: 'demo', stream: 'demo:t:0', offset: i * 100, demo: 'face-tracker', token: 't',
    ts: Date.UTC(2026, 10, 24, 10, 0, 0, i), level: 2, message, fields: null, ...extra,
  };
}

/** A logger that says nothing (the abstract logger Fastify uses without one). */
export const silentLog = Fastify({ logger: false }).log;
