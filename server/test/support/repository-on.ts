import { afterAll, beforeAll } from 'vitest';
import type { Sql } from '../../src/db/sql.js';
import type { StoreKind, StoreUnderTest } from './stores.js';

/** What a repository suite works with: the store (for its sql) and the repository over it. */
export interface RepositoryUnderTest<Repository> {
  store: StoreUnderTest;
  repository: Repository;
}

/**
 * Called in a `describe.each(storeKinds)` body: opens a store of this kind before the suite (an
 * empty migrated database of its own), makes the repository over it, and closes it after.
 */
export function repositoryOn<Repository>(kind: StoreKind, make: (sql: Sql) => Repository): RepositoryUnderTest<Repository> {
  const under = {} as RepositoryUnderTest<Repository>;
  beforeAll(async () => {
    under.store = await kind.open();
    under.repository = make(under.store.sql);
  });
  afterAll(() => under.store?.close());
  return under;
}
