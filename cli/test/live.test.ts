import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { CloseCode } from '@dvic/protocol/shared';
import { connect } from '../src/connection.js';
import type { CliError } from '../src/errors.js';
import { LiveConnection } from '../src/live.js';

/** A live endpoint on loopback that closes every connection the way a test says. */
function closingServer(code: number, reason: string, refuse = false) {
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0,
    verifyClient: (_info, done) => (refuse ? done(false, 401, 'Unauthorized') : done(true)),
  });
  let connections = 0;
  wss.on('connection', (socket) => {
    connections++;
    socket.close(code, reason);
  });
  const ready = new Promise<string>((resolve) => wss.on('listening', () => resolve(`http://127.0.0.1:${(wss.address() as AddressInfo).port}`)));
  return { wss, ready, connections: () => connections };
}

let servers: WebSocketServer[] = [];
afterEach(() => {
  for (const wss of servers) wss.close();
  servers = [];
});

/** Follows the endpoint until the connection ends for good or `until` says enough. */
function follow(url: string, until: (statuses: string[]) => boolean): Promise<{ statuses: string[]; ended?: string }> {
  const statuses: string[] = [];
  return new Promise((resolve) => {
    const live = new LiveConnection(connect({ url, token: 'dvic_test' }), {
      onMessage: () => undefined,
      onStatus: (status, detail) => {
        statuses.push(`${status}${detail ? `: ${detail}` : ''}`);
        if (until(statuses)) {
          live.stop();
          resolve({ statuses });
        }
      },
      onEnd: (err: CliError) => resolve({ statuses, ended: err.message }),
    });
    live.start();
  });
}

describe('the live stream of the CLI', () => {
  it('stops and says to sign in again when the server ends the session', async () => {
    const server = closingServer(CloseCode.sessionEnded, 'session ended');
    servers.push(server.wss);
    const result = await follow(await server.ready, () => false);
    expect(result.ended).toBe('the session was ended (signed out, token revoked or user disabled): run dvic login');
    expect(server.connections()).toBe(1);
  });

  it('stops and says to sign in again when the token is refused', async () => {
    const server = closingServer(1000, '', true);
    servers.push(server.wss);
    expect((await follow(await server.ready, () => false)).ended).toBe('not signed in (the token was revoked or has expired): run dvic login');
  });

  it('says it fell behind and connects again to catch up', async () => {
    const server = closingServer(CloseCode.slowConsumer, 'too slow');
    servers.push(server.wss);
    const { statuses } = await follow(await server.ready, (s) => s.filter((x) => x.startsWith('lost')).length === 2);
    expect(statuses.slice(0, 4)).toEqual(['connected', 'lost: fell behind the live stream, catching up', 'connected', 'lost: fell behind the live stream, catching up']);
  });
});
