import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parse } from 'yaml';
import { LiveRecorder } from '../support/live-recorder.js';
import { startTestServer, waitFor } from '../support/test-server.js';
import { freePort } from '../cluster/bus-fixtures.js';

// deploy/nginx/dvic.conf in front of two real server processes (the built server, npm run build),
// on loopback ports of this test's own: REST and the live WebSocket reach both, X-Forwarded-For
// is believed from nginx (DVIC_TRUST_PROXY). And the compose file names what the server reads.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
if (!NGINX && process.env.CI === 'true') throw new Error('nginx is needed by the deployment test (Debian package nginx-light)');

/** The scale-out variables the cluster wiring reads (docs/scale-out.md#deployment). */
const CLUSTER_ENV = ['DVIC_DATABASE_URL', 'DVIC_NATS_URL', 'DVIC_REPLICA_ID'];

describe('deploy/compose/docker-compose.yml', () => {
  // Compose files use YAML merge keys (<<:) as docker compose reads them.
  const compose = parse(fs.readFileSync(path.join(root, 'deploy/compose/docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; build?: { dockerfile: string }; command?: string[] }>;
  };
  const replicas = Object.entries(compose.services).filter(([name]) => name.startsWith('replica-'));

  it('runs two replicas, PostgreSQL, NATS with JetStream and nginx, from an image built here', () => {
    expect(replicas.map(([name]) => name)).toEqual(['replica-1', 'replica-2']);
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 'nats', 'nginx']));
    expect(compose.services.nats!.command).toContain('-js');
    // The bus takes a password (docs/scale-out.md#security): the same one the replicas' DVIC_NATS_URL carries.
    expect(compose.services.nats!.command).toEqual(expect.arrayContaining(['--user', 'dvic', '--pass', '${NATS_PASSWORD:?set NATS_PASSWORD in .env}']));
    expect(fs.existsSync(path.join(root, replicas[0]![1].build!.dockerfile))).toBe(true);
  });

  it('gives each replica the database, the bus and an id of its own, and only variables the server reads', () => {
    const config = fs.readFileSync(path.join(root, 'server/src/config.ts'), 'utf8');
    const scaleOut = fs.readFileSync(path.join(root, 'docs/scale-out.md'), 'utf8');
    const ids = new Set<string>();
    for (const [name, service] of replicas) {
      const env = service.environment ?? {};
      for (const key of CLUSTER_ENV) expect(env[key], `${name} ${key}`).toBeTruthy();
      ids.add(env.DVIC_REPLICA_ID!);
      expect(env.DVIC_DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
      expect(env.DVIC_NATS_URL).toBe('nats://dvic:${NATS_PASSWORD:?set NATS_PASSWORD in .env}@nats:4222');
      for (const key of Object.keys(env)) {
        const known = config.includes(`'${key}'`) || config.includes(`env.${key}`) || (CLUSTER_ENV.includes(key) && scaleOut.includes(`\`${key}\``));
        expect(known, `${name}: ${key} is not a variable the server reads`).toBe(true);
      }
    }
    expect(ids.size).toBe(2);
  });
});

describe.skipIf(!NGINX)('deploy/nginx/dvic.conf in front of two replicas', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-nginx-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  let proxy = '';
  let token = '';

  /** A server process on a data dir of its own (a copy of the seed: the same admin and token, as a shared database gives). */
  async function replica(dataDir: string): Promise<number> {
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(root, 'server/dist/main.js')], {
      env: { ...process.env, DVIC_DATA_DIR: dataDir, DVIC_HOST: '127.0.0.1', DVIC_PORT: String(port), DVIC_LOCAL_AGENT: '0', DVIC_TRUST_PROXY: '127.0.0.1', DVIC_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
    const up = () => fetch(`http://127.0.0.1:${port}/api/v1/server/stats`).then(() => true, () => false);
    await waitFor(() => (child.exitCode === null ? up() : Promise.reject(new Error(`the replica exited: ${stderr}`))), 150_000, `the replica on ${port}`)
      .catch((err: Error) => { throw new Error(`${err.message}; it said: ${stderr}`); });
    return port;
  }

  beforeAll(async () => {
    const seed = await startTestServer();
    token = (await seed.api('POST', '/api/v1/tokens', { name: 'proxy-test' })).json<{ token: string }>().token;
    await seed.app.close();
    const dirs = ['a', 'b'].map((name) => path.join(tmp, name));
    for (const dir of dirs) fs.cpSync(seed.dataDir, dir, { recursive: true });
    ports.push(...await Promise.all(dirs.map(replica)));
    fs.rmSync(seed.dataDir, { recursive: true, force: true });

    // The shipped file as it is, but for the upstream addresses and the listening port.
    const listen = await freePort();
    const site = fs.readFileSync(path.join(root, 'deploy/nginx/dvic.conf'), 'utf8')
      .replace(/^\s*server replica-1:8787.*$/m, `    server 127.0.0.1:${ports[0]};`)
      .replace(/^\s*server replica-2:8787.*$/m, `    server 127.0.0.1:${ports[1]};`)
      .replace(/listen 80;/, `listen 127.0.0.1:${listen};`);
    expect(site).not.toMatch(/replica-\d:8787/);
    fs.writeFileSync(path.join(tmp, 'dvic.conf'), site);
    for (const dir of ['body', 'proxy', 'logs']) fs.mkdirSync(path.join(tmp, dir), { mode: 0o777 });
    fs.writeFileSync(path.join(tmp, 'nginx.conf'), `
      ${process.getuid?.() === 0 ? 'user root;' : ''}
      worker_processes 1; daemon off; pid ${tmp}/nginx.pid; error_log ${tmp}/logs/error.log warn;
      events { worker_connections 64; }
      http {
        log_format upstream '$upstream_addr $status $request_uri';
        access_log ${tmp}/logs/access.log upstream;
        client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy;
        include ${tmp}/dvic.conf;
      }`);
    const check = spawnSync(NGINX!, ['-t', '-p', tmp, '-c', path.join(tmp, 'nginx.conf')], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
    children.push(spawn(NGINX!, ['-p', tmp, '-c', path.join(tmp, 'nginx.conf')], { stdio: 'ignore' }));
    proxy = `127.0.0.1:${listen}`;
    await waitFor(() => fetch(`http://${proxy}/api/v1/server/stats`).then(() => true, () => false), 10_000, 'nginx');
  }, 240_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The upstreams nginx used for requests to this path, from its access log. */
  const upstreamsOf = (pathname: string, status: number) => new Set(fs.readFileSync(path.join(tmp, 'logs/access.log'), 'utf8').split('\n')
    .map((line) => line.split(' ')).filter(([, s, uri]) => Number(s) === status && uri?.startsWith(pathname)).map(([addr]) => addr));
  const both = () => new Set(ports.map((p) => `127.0.0.1:${p}`));
  const auth = () => ({ authorization: `Bearer ${token}` });

  it('passes REST through to both replicas', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`http://${proxy}/api/v1/nodes`, { headers: auth() });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ nodes: [] });
    }
    await waitFor(() => upstreamsOf('/api/v1/nodes', 200).size === 2, 5000, 'both upstreams in the access log');
    expect(upstreamsOf('/api/v1/nodes', 200)).toEqual(both());
  });

  it('upgrades the live WebSocket on both replicas: each socket gets its snapshot through nginx', async () => {
    for (let i = 0; i < 4; i++) {
      const socket = new WebSocket(`ws://${proxy}/api/v1/live`, { headers: auth() });
      const recorder = new LiveRecorder(socket);
      await waitFor(() => recorder.first('snapshot'), 10_000, 'the snapshot through nginx');
      socket.close();
    }
    await waitFor(() => upstreamsOf('/api/v1/live', 101).size === 2, 5000, 'both upstreams in the access log');
    expect(upstreamsOf('/api/v1/live', 101)).toEqual(both());
  });

  it("forwards the client's address: a replica trusting nginx (DVIC_TRUST_PROXY) records it", async () => {
    const res = await fetch(`http://${proxy}/api/v1/tokens`, {
      method: 'POST', headers: { ...auth(), 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.7' }, body: JSON.stringify({ name: 'through-nginx' }),
    });
    expect(res.status).toBe(201);
    const sources = await Promise.all(ports.map(async (port) => {
      const audit = await (await fetch(`http://127.0.0.1:${port}/api/v1/audit?action=token.create`, { headers: auth() })).json() as { entries: { source_ip: string }[] };
      return audit.entries.map((e) => e.source_ip);
    }));
    // Each copy has the seed's own token.create (made in process, 127.0.0.1); the new one is on the replica nginx picked.
    expect(sources.flat().sort()).toEqual(['127.0.0.1', '127.0.0.1', '203.0.113.7']);
  });
});
