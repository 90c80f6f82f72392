import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NO_ACTIONS, type DemoSettings } from '../../src/live/demo-state.js';
import { DemoEntitiesRepository } from '../../src/repositories/demo-entities-repository.js';
import { storeKinds, type StoreUnderTest } from '../support/stores.js';

const NODE = 'a0000000-0000-4000-8000-000000000001';
const settings = (id: string, name: string, extra: Partial<DemoSettings> = {}): DemoSettings => ({
  id, node_id: NODE, name, expected: false, schedule: null, notes: null, actions: NO_ACTIONS, created_at: 1000, ...extra,
});
const schedule: DemoSettings['schedule'] = { days: ['mon', 'tue'], open: '09:00', close: '18:00' };

describe.each(storeKinds)('demo entities repository on $name', (kind) => {
  let store: StoreUnderTest;
  let entities: DemoEntitiesRepository;
  beforeEach(async () => {
    store = await kind.open();
    entities = new DemoEntitiesRepository(store.sql);
  });
  afterEach(() => store.close());

  it('saves a demo, then its settings, keeping its identity', async () => {
    const id = 'd0000000-0000-4000-8000-000000000001';
    await entities.save(settings(id, 'kiosk'));
    await entities.save(settings(id, 'renamed-is-ignored', { expected: true, schedule, notes: 'hall', actions: { ...NO_ACTIONS, start: 'systemctl start kiosk' }, created_at: 5 }));
    expect(await entities.all()).toEqual([settings(id, 'kiosk', { expected: true, schedule, notes: 'hall', actions: { ...NO_ACTIONS, start: 'systemctl start kiosk' } })]);
    await entities.delete(id);
    expect(await entities.all()).toEqual([]);
  });

  it('keeps one label rule per (label, demo), oldest first, and deletes by id', async () => {
    const rule = { label_key: 'room', label_value: 'hall', name: 'kiosk', schedule: null };
    expect(await entities.addExpectation({ ...rule, id: 'e2', created_at: 20 })).toBe(true);
    expect(await entities.addExpectation({ ...rule, id: 'e3', created_at: 30 })).toBe(false);
    expect(await entities.addExpectation({ ...rule, name: 'camera', schedule, id: 'e1', created_at: 10 })).toBe(true);
    expect(await entities.expectations()).toEqual([{ ...rule, name: 'camera', schedule, id: 'e1', created_at: 10 }, { ...rule, id: 'e2', created_at: 20 }]);
    expect(await entities.deleteExpectation('e2')).toBe(true);
    expect(await entities.deleteExpectation('e2')).toBe(false);
    expect((await entities.expectations()).map((e) => e.id)).toEqual(['e1']);
  });
});
