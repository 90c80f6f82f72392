import type { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LogRecordView, LogsRecordsLiveMessage } from '@dvic/protocol';
import { LogTail } from '../../src/live/log-tail.js';
import { LogsRepository } from '../../src/repositories/logs-repository.js';
import { newRecord, silentLog } from '../support/memory-db.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

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

describe.each(storeKinds)('following logs on $name', (kind) => {
let database: StoreUnderTest;
let store: LogsRepository;
let tail: LogTail;
let offset = 0;
let firstId = 0;

/** Stores and publishes records as the log writer does: commit, then publish. */
async function write(count: number, message = (i: number) => `line ${i}`): Promise<void> {
  const records = await store.insertNew(Array.from({ length: count }, () => newRecord(offset, message(offset++))));
  tail.publish(records);
}
const flush = () => tail.flush();
/** The id before the n+1-th record written in the test. */
const after = (n: number) => firstId - 1 + n;
/** Ids of the records written from..to (1 = the first of the test). */
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => firstId + from + i - 1);

beforeAll(async () => { database = await kind.open(); });
afterAll(() => database.close());
beforeEach(async () => {
  // Ids start at 1 again, as the tests count them.
  await database.sql.run(kind.name === 'postgres' ? 'TRUNCATE log_records RESTART IDENTITY' : 'DELETE FROM log_records');
  store = await LogsRepository.open(database.sql);
  tail = new LogTail(store, silentLog);
  offset = 0;
  firstId = (await store.maxId()) + 1;
});
afterEach(() => tail.stop());

  it('replays history after after_id, then tails, with no gap and no duplicate across the switch', async () => {
    await write(1200);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, after(100));
    await write(50); // written while the history is being replayed
    for (let i = 0; i < 5; i++) {
      await flush();
      await write(10); // and while it switches to live
    }
    await flush();
    expect(socket.ids).toEqual(range(101, 1300));
    expect(socket.frames.filter((f) => f.caught_up)).toHaveLength(1);
  });

  it('without after_id sends only what is new', async () => {
    await write(10);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {});
    await write(3);
    await flush();
    expect(socket.ids).toEqual(range(11, 13));
  });

  it('feeds a follower that falls behind from the database: nothing is dropped or doubled, memory stays bounded', async () => {
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, after(0));
    await flush();
    socket.bufferedAmount = 10 * 1024 * 1024; // the client stopped reading
    await write(12_000);
    await flush();
    const pending = (tail as unknown as { subscriptions: Map<unknown, { pending: unknown[] }> }).subscriptions.get(socket)!.pending;
    expect(pending.length).toBeLessThanOrEqual(5000);
    socket.bufferedAmount = 0;
    for (let i = 0; i < 40; i++) await flush();
    expect(socket.ids).toEqual(range(1, 12_000));
  });

  it('echoes the id of the subscription on every batch it answers, so a client tells them from an older one\'s', async () => {
    await write(600);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, after(0), 'first');
    await flush(); // its first page is on the way when the client changes its filters
    tail.subscribe(socket as unknown as WebSocket, { q: 'line' }, after(550), 'second');
    await write(3);
    await flush();
    await flush();
    expect(socket.requestIds[0]).toBe('first');
    expect(socket.requestIds.slice(1)).toEqual(Array(socket.requestIds.length - 1).fill('second'));
    expect(socket.frames.slice(1).flatMap((f) => f.records.map((r) => r.id))).toEqual(range(551, 603));
  });

  // PostgreSQL: replicas take ids from one sequence and commit on their own, so an older id can be
  // committed (and published) after newer ones. SQLite has one writer: it never happens there, and
  // a follower keeps to "everything up to the newest id sent", as it always did.
  const late = kind.name === 'postgres';

  it(late ? 'sends a record committed late (an older id after newer ones) once, live' : 'never sends an id older than one sent', async () => {
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {});
    await flush();
    const [x1, x2, x3] = await store.insertNew([0, 1, 2].map((i) => newRecord(offset + i, `line ${offset + i}`)));
    tail.publish([x1!, x3!]);
    await flush();
    tail.publish([x2!]);
    await flush();
    expect(socket.ids).toEqual(late ? [x1!.id, x3!.id, x2!.id] : [x1!.id, x3!.id]);
  });

  it(late ? 'sends a record committed after the page that passed its id, once, and not again what the page had' : 'takes nothing older than the page it read', async () => {
    const [x1, x2, x3] = await store.insertNew([0, 1, 2].map((i) => newRecord(offset + i, `line ${offset + i}`)));
    // x2 is not committed yet when the follower's page is read.
    await database.sql.run('DELETE FROM log_records WHERE id = ?', [x2!.id]);
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, after(0));
    await flush();
    expect(socket.ids).toEqual([x1!.id, x3!.id]);
    // Committed now; x1 and x3 are published after the page had them (another replica's, through the bus).
    tail.publish([x1!, x2!, x3!]);
    await flush();
    expect(socket.ids).toEqual(late ? [x1!.id, x3!.id, x2!.id] : [x1!.id, x3!.id]);
  });

  it('takes every record up to after_id as had: one the client read is not sent again when its event comes after the subscription', async () => {
    // Committed and read by the client (dvic logs -n 1000 -f); another replica's event for them
    // reaches this replica's bus only after the follow began.
    const [x1, x2, x3] = await store.insertNew([0, 1, 2].map((i) => newRecord(offset + i, `line ${offset + i}`)));
    offset += 3;
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, {}, x3!.id);
    await flush();
    tail.publish([x1!, x2!, x3!]);
    await write(1);
    await flush();
    expect(socket.ids).toEqual([x3!.id + 1]);
  });

  it('applies the filters and the search text to history and to live records alike', async () => {
    await write(5, (i) => (i % 2 ? 'camera lost' : 'all fine'));
    const socket = new FakeSocket();
    tail.subscribe(socket as unknown as WebSocket, { q: 'camera' }, after(0));
    await write(5, (i) => (i % 2 ? 'camera lost' : 'all fine'));
    await flush();
    await flush();
    expect(socket.frames.flatMap((f) => f.records.map((r) => r.message))).toEqual(Array(5).fill('camera lost'));
  });
});
