import type { WebSocket } from 'ws';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogRecordView, LogsRecordsLiveMessage } from '@dvic/protocol';
import type { Db } from '../../src/db/database.js';
import { LogTail } from '../../src/live/log-tail.js';
import { LogsRepository } from '../../src/repositories/logs-repository.js';
import { memoryDb, newRecord } from '../support/memory-db.js';

/** A socket that keeps what it is sent; bufferedAmount can be raised to play a slow client. */
class FakeSocket {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  readonly frames: { records: LogRecordView[]; caught_up?: boolean }[] = [];
  readonly requestIds: (string | undefined)[] = [];
  send(text: string): void {
    const message = JSON.parse(text) as LogsRecordsLiveMessage;
    this.frames.push(message.data);
    this.requestIds.push(message.id);
  }
  get ids(): number[] {
    return this.frames.flatMap((f) => f.records.map((r) => r.id));
  }
}

let db: Db;
let store: LogsRepository;
let tail: LogTail;
let offset = 0;

/** Stores and publishes records as the log writer does: commit, then publish. */
function write(count: number, message = (i: number) => `line ${i}`): void {
  const records = db.transaction(() => store.insertNew(Array.from({ length: count }, () => newRecord(offset, message(offset++)))))();
  tail.publish(records);
}
const flush = () => (tail as unknown as { flush(): void }).flush();
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeEach(() => {
  db = memoryDb();
  store = new LogsRepository(db);
  tail = new LogTail(store);
  offset = 0;
});
afterEach(() => {
  tail.stop();
  db.close();
});

describe('following logs', () => {
  it('replays history after after_id, then tails, with no gap and no duplicate across the switch', () => {
    write(1200);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, 100);
    write(50); // written while the history is being replayed
    for (let i = 0; i < 5; i++) {
      flush();
      write(10); // and while it switches to live
    }
    flush();
    expect(socket.ids).toEqual(range(101, 1300));
    expect(socket.frames.filter((f) => f.caught_up)).toHaveLength(1);
  });

  it('without after_id sends only what is new', () => {
    write(10);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {});
    write(3);
    flush();
    expect(socket.ids).toEqual([11, 12, 13]);
  });

  it('feeds a follower that falls behind from the database: nothing is dropped or doubled, memory stays bounded', () => {
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, 0);
    flush();
    socket.bufferedAmount = 10 * 1024 * 1024; // the client stopped reading
    write(12_000);
    flush();
    const pending = (tail as unknown as { subscriptions: Map<unknown, { pending: unknown[] }> }).subscriptions.get(socket)!.pending;
    expect(pending.length).toBeLessThanOrEqual(5000);
    socket.bufferedAmount = 0;
    for (let i = 0; i < 40; i++) flush();
    expect(socket.ids).toEqual(range(1, 12_000));
  });

  it('echoes the id of the subscription on every batch it answers, so a client tells them from an older one\'s', () => {
    write(600);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, 0, 'first');
    tail.subscribe(socket as unknown as WebSocket, { q: 'line' }, 550, 'second');
    write(3);
    flush();
    flush();
    expect(socket.requestIds[0]).toBe('first');
    expect(socket.requestIds.slice(1)).toEqual(Array(socket.requestIds.length - 1).fill('second'));
    expect(socket.frames.slice(1).flatMap((f) => f.records.map((r) => r.id))).toEqual(range(551, 603));
  });

  it('applies the filters and the search text to history and to live records alike', () => {
    write(5, (i) => (i % 2 ? 'camera lost' : 'all fine'));
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, { q: 'camera' }, 0);
    write(5, (i) => (i % 2 ? 'camera lost' : 'all fine'));
    flush();
    flush();
    expect(socket.frames.flatMap((f) => f.records.map((r) => r.message))).toEqual(Array(5).fill('camera lost'));
  });
});
