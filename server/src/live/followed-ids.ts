/**
 * Which log records a follower has had, by id (live/log-tail.ts).
 *
 * On SQLite one writer commits ids in increasing order, so "had everything up to the newest id
 * sent" is exact: `lateWindow` is 0 and a record is new exactly when its id is above that mark.
 *
 * On PostgreSQL the replicas of a lab take ids from one sequence but commit on their own: replica
 * B may commit id 101 after replica A committed 105, and so may two write lanes of one replica
 * (services/log-writer.ts). A follower that got 105 must still take 101.
 * So a record up to `lateWindow` ids behind the newest one sent is new too, unless this follower
 * had it. Records sent live need no memory of their ids: every committed record is published to
 * a replica once (its own writer, or the fan-out), so only the ids of database pages are kept (a
 * record read from the database may still be published afterwards), and only within the window.
 *
 * What a client names with after_id (its history read, or what it had before a reconnection) it
 * has, all of it: a line it read whose event reaches this replica only after the subscription is
 * not sent again. The cost: a line committed late below after_id (its transaction still open when
 * the client read) is not sent live either; it is stored and found by search.
 *
 * Chosen over a mark per origin replica, which would be exact with less memory but needs the
 * origin of every stored row (a column and a migration) for the database pages, which have none.
 * The cost of the window: a record committed more than `lateWindow` ids behind the newest one a
 * follower got (a log transaction held open while the lab wrote that many lines) is not sent
 * live; it is stored and found by search (docs/scale-out.md).
 */
export class FollowedIds {
  /** Ids read from the database above the window's floor, oldest first (pages come in id order). */
  private readonly fromDatabase = new Set<number>();

  /** Every record up to it is had, late or not: the after_id the client named (0 from now). */
  private readonly clientHad: number;

  /** `newest`: every record up to it counts as had (after_id, or the newest id at a "from now" start). */
  constructor(private newest: number, private readonly lateWindow: number) {
    this.clientHad = newest;
  }

  /** The newest id sent (or started from): a database page reads after it. */
  get last(): number {
    return this.newest;
  }

  /** Not sent yet, not named by the client's after_id, and not so far behind that it is taken as had. */
  isNew(id: number): boolean {
    return id > this.clientHad && id > this.newest - this.lateWindow && !this.fromDatabase.has(id);
  }

  /** Committed after ids this follower already got: no database page will bring it. */
  isLate(id: number): boolean {
    return id <= this.newest;
  }

  /** A "from now" follow starts after the newest stored id. */
  startAfter(id: number): void {
    this.newest = Math.max(this.newest, id);
    this.forgetBelowWindow();
  }

  sentLive(ids: number[]): void {
    for (const id of ids) if (id > this.newest) this.newest = id;
    this.forgetBelowWindow();
  }

  sentFromDatabase(ids: number[]): void {
    for (const id of ids) {
      if (this.lateWindow > 0) this.fromDatabase.add(id);
      if (id > this.newest) this.newest = id;
    }
    this.forgetBelowWindow();
  }

  /** Ids below the window count as had anyway: their entries would only take memory. */
  private forgetBelowWindow(): void {
    const floor = this.newest - this.lateWindow;
    for (const id of this.fromDatabase) {
      if (id > floor) break;
      this.fromDatabase.delete(id);
    }
  }
}
