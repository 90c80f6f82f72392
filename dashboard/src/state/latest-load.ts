/**
 * A list a view fetches and then keeps current from live messages, loaded again after each
 * reconnection. Loads can overlap (the page opens while the stream connects, and it opens again):
 * only the latest load's answer is used, with the live messages heard while it was on its way
 * (the answer may have been made before them). Pure: no timers, no I/O.
 */
export class LatestLoad<M> {
  private generation = 0;
  /** Heard since the latest load began; null once it answered (nothing is kept between loads). */
  private heardSince: M[] | null = null;

  /** A new load begins; its number, for finish(). */
  begin(): number {
    this.heardSince = [];
    return ++this.generation;
  }

  /** Live messages, kept for the load on its way. */
  heard(messages: readonly M[]): void {
    this.heardSince?.push(...messages);
  }

  /** Load `generation` answered: the messages to lay over its answer, or null when a later load began (drop it). */
  finish(generation: number): M[] | null {
    if (generation !== this.generation) return null;
    const since = this.heardSince ?? [];
    this.heardSince = null;
    return since;
  }

  /** Whether load `generation` is still the latest (its error is worth showing). */
  isLatest(generation: number): boolean {
    return generation === this.generation;
  }
}
