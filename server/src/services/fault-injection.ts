/**
 * Test-only failure points, armed by DVIC_TEST_FAULTS or by a test in the same process:
 * "log-store@3" makes the 3rd log batch the server tries to store fail once (answered logs.nack);
 * "log-drop@3" makes the server ignore the 3rd log batch it receives (no answer at all, as if it
 * was lost on the way: the agent must send it again after its answer timeout). They let end-to-end tests
 * prove that a failure loses nothing; in normal operation nothing is armed and each check is a
 * map lookup.
 */
export type FaultPoint = 'log-store' | 'log-drop';

export class FaultInjector {
  private readonly armed = new Map<FaultPoint, Set<number>>();
  private readonly hits = new Map<FaultPoint, number>();

  /** Parses "point@n,point@m"; unknown points are an error (a typo would test nothing). */
  static fromSpec(spec: string | undefined): FaultInjector {
    const faults = new FaultInjector();
    for (const item of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      const match = /^(log-store|log-drop)@(\d+)$/.exec(item);
      if (!match) throw new Error(`DVIC_TEST_FAULTS: "${item}" is not point@n (points: log-store, log-drop)`);
      faults.arm(match[1] as FaultPoint, Number(match[2]));
    }
    return faults;
  }

  /** Makes the nth pass (1-based, counted from now on) through a point fail. */
  arm(point: FaultPoint, nth: number): void {
    const seen = this.hits.get(point) ?? 0;
    let set = this.armed.get(point);
    if (!set) this.armed.set(point, (set = new Set()));
    set.add(seen + nth);
  }

  /** Throws when this pass through the point is armed. */
  check(point: FaultPoint): void {
    const set = this.armed.get(point);
    if (!set) return;
    const hit = (this.hits.get(point) ?? 0) + 1;
    this.hits.set(point, hit);
    if (set.delete(hit)) throw new InjectedFault(`injected fault at ${point} (pass ${hit})`);
  }
}

export class InjectedFault extends Error {}
