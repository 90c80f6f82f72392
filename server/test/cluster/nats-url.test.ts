import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsConnectOptions } from '../../src/cluster/nats-url.js';
import { waitFor } from '../support/test-server.js';

describe('natsConnectOptions (DVIC_NATS_URL)', () => {
  it('takes the credentials out of the URLs: user and password, or a lone token; tls:// requires TLS', () => {
    expect(natsConnectOptions('nats://127.0.0.1:4222')).toEqual({ servers: ['nats://127.0.0.1:4222'] });
    expect(natsConnectOptions('nats://dvic:p%40ss@nats-1:4222, nats://nats-2:4222')).toEqual({ servers: ['nats://nats-1:4222', 'nats://nats-2:4222'], user: 'dvic', pass: 'p@ss' });
    expect(natsConnectOptions('tls://s3cret-token@bus.lab:4443')).toEqual({ servers: ['tls://bus.lab:4443'], token: 's3cret-token', tls: {} });
  });
});

/** A nats-server of this test's own, with a password (the shared one on 4222 has none, and its configuration is not ours to change). */
const NATS_SERVER = spawnSync('nats-server', ['--version']).status === 0;
if (!NATS_SERVER && process.env.CI === 'true') throw new Error('nats-server is needed by the bus credential test');

describe.skipIf(!NATS_SERVER)('a bus with a password (a nats-server of its own)', () => {
  let child: ChildProcess;
  let port = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-nats-auth-'));
  beforeAll(async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '--user', 'dvic', '--pass', 'bus-pw', '-js', '-sd', dir], { stdio: 'ignore' });
    const listening = () => new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); }).on('error', () => resolve(false));
    });
    await waitFor(listening, 10_000, 'nats-server listening');
  }, 20_000);
  afterAll(() => {
    child?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('connects with the credentials of DVIC_NATS_URL, which nats.js alone would not send; refuses without them', async () => {
    const url = `nats://dvic:bus-pw@127.0.0.1:${port}`;
    const nc = await connect({ ...natsConnectOptions(url), timeout: 5000 });
    await nc.flush();
    await nc.close();
    await expect(connect({ servers: url, timeout: 5000, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);
    await expect(connect({ ...natsConnectOptions(`nats://dvic:wrong@127.0.0.1:${port}`), timeout: 5000, maxReconnectAttempts: 0 })).rejects.toThrow(/authoriz/i);
  });
});
