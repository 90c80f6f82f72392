import { describe, expect, it } from 'vitest';
import { SqliteSql } from '../../src/db/sqlite-sql.js';
import { RecentLines } from '../../src/live/recent-lines.js';
import { LogsRepository } from '../../src/repositories/logs-repository.js';
import { memoryDb, newRecord, NODE_ID, silentLog } from '../support/memory-db.js';
import { waitFor } from '../support/test-server.js';

describe('recent lines of a demo (what an alert carries)', () => {
  it('keeps the last lines of each demo as they are committed, and reads a demo not seen since the start from the store once', async () => {
    const db = memoryDb();
    try {
      const logs = await LogsRepository.open(new SqliteSql(db));
      const before = await logs.insertNew(Array.from({ length: 5 }, (_, i) => newRecord(i, `old ${i}`, { level: i === 4 ? 4 : 2 })));
      const recent = new RecentLines(logs, 3, silentLog);
      expect(recent.of(NODE_ID, 'face-tracker')).toEqual([]); // read in the background
      const now = await logs.insertNew([newRecord(5, 'new 5')]);
      recent.add(now); // committed while the store was being read
      await waitFor(() => recent.of(NODE_ID, 'face-tracker').length === 3, 5000, 'lines read from the store');
      expect(recent.of(NODE_ID, 'face-tracker')).toEqual(['INFO old 3', 'ERROR old 4', 'INFO new 5']);
      recent.add([...before.slice(0, 1).map((r) => ({ ...r, demo: 'kiosk' })), { ...now[0]!, source: 'system', demo: null }]);
      expect(recent.of(NODE_ID, 'kiosk')).toEqual(['INFO old 0']);
    } finally {
      db.close();
    }
  });
});
