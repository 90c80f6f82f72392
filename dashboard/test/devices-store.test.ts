import { describe, expect, it } from 'vitest';
import { applyDeviceLive, deviceUrls, emptyDevices, visibleDevices, withList } from '../src/state/devices-store.js';
import { device } from '../../protocol/test/fixtures.js';

describe('devices store', () => {
  it('applies status, seen, updated and removed messages in order', () => {
    let s = withList(emptyDevices(), [device('a', 'esp-a'), device('b', 'esp-b')]);
    const before = s;
    s = applyDeviceLive(s, [{ type: 'node.removed', data: { node_id: 'x' } }]);
    expect(s).toBe(before);
    s = applyDeviceLive(s, [
      { type: 'device.status', data: { device_id: 'a', status: 'down', since: 5, reason: 'no ping' } },
      { type: 'devices.seen', data: { devices: [{ device_id: 'b', last_seen: 9, last_status: 'ok', last_message: 'hi', numbers: { rssi: -50 }, ping_count: 7 }] } },
      { type: 'device.updated', data: { device: device('c', 'cron') } },
      { type: 'device.removed', data: { device_id: 'b' } },
    ]);
    expect(s.byId.get('a')).toMatchObject({ status: 'down', status_since: 5 });
    expect([...s.byId.keys()]).toEqual(['a', 'c']);
    expect(s.version).toBe(before.version + 1);
  });

  it('lists down and late first, filters by name, label or demo', () => {
    const s = withList(emptyDevices(), [device('a', 'a-up'), device('b', 'b-down', { status: 'down' }), device('c', 'c-late', { status: 'late', labels: { room: 'hall' } })]);
    expect(visibleDevices(s, '', true).map((d) => d.name)).toEqual(['b-down', 'c-late', 'a-up']);
    expect(visibleDevices(s, 'room=hall', false).map((d) => d.name)).toEqual(['c-late']);
  });

  it('builds the three URL shapes and an Arduino snippet with the token filled in', () => {
    const urls = deviceUrls('http://lab:8787', 'dvk_abc', 30);
    expect(urls.arduino).toContain('dvic.setPeriod(30);');
    expect(urls.keepalive).toBe('http://lab:8787/api/v1/devices/dvk_abc/keepalive');
    expect(urls.healthchecks).toBe('http://lab:8787/ping/dvk_abc');
    expect(urls.kuma).toMatch(/^http:\/\/lab:8787\/api\/push\/dvk_abc\?status=up/);
    expect(urls.arduino).toContain('DvicKeepalive dvic("http://lab:8787", "dvk_abc");');
  });
});
