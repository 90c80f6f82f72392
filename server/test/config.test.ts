import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { loadTls } from '../src/services/tls.js';

describe('security settings from the environment', () => {
  it('reads DVIC_TRUST_PROXY as none, any peer, a hop count or a list of addresses', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ DVIC_TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ DVIC_TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ DVIC_TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1' }).trustProxy).toEqual(['127.0.0.1', '10.0.0.0/8', '::1']);
    expect(() => loadConfig({ DVIC_TRUST_PROXY: 'proxy.example.org' })).toThrow(ConfigError);
  });

  it('reads DVIC_ALLOWED_ORIGINS as origins only, and refuses anything else by name', () => {
    expect(loadConfig({ DVIC_ALLOWED_ORIGINS: 'https://Wall.Example.org:443, http://localhost:5173/' }).allowedOrigins).toEqual(['https://wall.example.org', 'http://localhost:5173']);
    for (const bad of ['wall.example.org', 'https://wall.example.org/dashboard', 'ftp://x', 'https://user@x']) {
      expect(() => loadConfig({ DVIC_ALLOWED_ORIGINS: bad }), bad).toThrow(/DVIC_ALLOWED_ORIGINS/);
    }
  });

  it('reads DVIC_REPLICA_URLS as base URLs in order, and refuses anything else by name', () => {
    expect(loadConfig({}).replicaUrls).toEqual([]);
    expect(loadConfig({ DVIC_REPLICA_URLS: ' https://Dvic-1.example.org:8787/, http://10.0.0.12:8787,https://lab.example.org/dvic/ ' }).replicaUrls)
      .toEqual(['https://dvic-1.example.org:8787', 'http://10.0.0.12:8787', 'https://lab.example.org/dvic']);
    const many = Array.from({ length: 17 }, (_, i) => `http://10.0.0.${i + 1}:8787`).join(',');
    for (const [bad, why] of [
      ['dvic 2', /is not a URL such as https:\/\//], ['dvic-2.example.org:8787', /must be http\(s\):\/\/host\[:port\]/], ['ws://dvic-2:8787', /must be http\(s\):/],
      ['https://dvic-2/?x=1', /without query/], ['https://user:pw@dvic-2', /credentials/], ['http://a:1,http://a:1/', /listed twice/],
      [many, /17 URLs, agents take at most 16/],
    ] as const) {
      expect(() => loadConfig({ DVIC_REPLICA_URLS: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ DVIC_REPLICA_URLS: bad }), bad).toThrow(why);
    }
    // A refused item is named by its position: its credentials are never printed.
    expect(() => loadConfig({ DVIC_REPLICA_URLS: 'https://dvic-1:8787,https://admin:s3cret@dvic-2' })).toThrow(/item 2 must be http\(s\)/);
    expect(() => loadConfig({ DVIC_REPLICA_URLS: 'https://admin:s3cret@dvic-2' })).not.toThrow(/s3cret/);
    expect(() => loadConfig({ DVIC_REPLICA_URLS: 'http://admin:s3cret@[bad' })).not.toThrow(/s3cret/);
  });

  it('wants both DVIC_TLS_CERT and DVIC_TLS_KEY or neither', () => {
    expect(() => loadConfig({ DVIC_TLS_CERT: '/etc/dvic/cert.pem' })).toThrow(/go together/);
    expect(loadConfig({ DVIC_TLS_CERT: '/c.pem', DVIC_TLS_KEY: '/k.pem' })).toMatchObject({ tlsCertFile: '/c.pem', tlsKeyFile: '/k.pem' });
  });

  it('names the file when a TLS file cannot be read or is not PEM', () => {
    expect(() => loadTls('/nonexistent/cert.pem', '/nonexistent/key.pem')).toThrow('DVIC_TLS_CERT=/nonexistent/cert.pem: ENOENT');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-tls-conf-'));
    fs.writeFileSync(path.join(dir, 'cert.pem'), 'not a certificate');
    try {
      expect(() => loadTls(path.join(dir, 'cert.pem'), path.join(dir, 'cert.pem'))).toThrow(/not a PEM certificate and key/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads DVIC_DATABASE_URL as a postgres:// URL (else SQLite), and never repeats it in an error', () => {
    expect(loadConfig({})).toMatchObject({ databaseUrl: undefined, databasePoolSize: 10 });
    const url = 'postgres://dvic:pw@db.example.org:5433/dvic';
    expect(loadConfig({ DVIC_DATABASE_URL: url, DVIC_DATABASE_POOL: '25' })).toMatchObject({ databaseUrl: url, databasePoolSize: 25 });
    expect(loadConfig({ DVIC_DATABASE_URL: 'postgresql://db/dvic' }).databaseUrl).toBe('postgresql://db/dvic');
    expect(() => loadConfig({ DVIC_DATABASE_URL: 'mysql://dvic:s3cret@db/dvic' })).toThrow(/^DVIC_DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL, not mysql:\/\/...$/);
    expect(() => loadConfig({ DVIC_DATABASE_URL: 'dvic:s3cret@db/dvic' })).toThrow(ConfigError);
    expect(() => loadConfig({ DVIC_DATABASE_URL: 'dvic:s3cret@db/dvic' })).not.toThrow(/s3cret/);
    expect(() => loadConfig({ DVIC_DATABASE_URL: url, DVIC_DATABASE_POOL: '0' })).toThrow(/DVIC_DATABASE_POOL/);
  });
});

describe('scale-out settings from the environment', () => {
  it('joins no cluster without DVIC_NATS_URL; names the replica after its host and pid by default', () => {
    const config = loadConfig({});
    expect(config.natsUrl).toBeUndefined();
    expect(config.replicaId).toMatch(new RegExp(`^[A-Za-z0-9_-]+-${process.pid}$`));
    expect(config).toMatchObject({ natsPrefix: 'dvic', clusterLeaseMs: 30_000 });
    expect(loadConfig({ DVIC_NATS_URL: 'nats://127.0.0.1:4222', DVIC_REPLICA_ID: 'replica-a', DVIC_NATS_PREFIX: 'lab_2', DVIC_CLUSTER_LEASE_S: '5' }))
      .toMatchObject({ natsUrl: 'nats://127.0.0.1:4222', replicaId: 'replica-a', natsPrefix: 'lab_2', clusterLeaseMs: 5000 });
  });

  it('refuses names that would mean something in a NATS subject, and a URL that is not one', () => {
    for (const id of ['replica.a', 'replica*', 'a>b', 'with space', 'x'.repeat(65)]) {
      expect(() => loadConfig({ DVIC_REPLICA_ID: id }), id).toThrow(/DVIC_REPLICA_ID/);
    }
    expect(() => loadConfig({ DVIC_NATS_PREFIX: 'dvic.lab' })).toThrow(/DVIC_NATS_PREFIX/);
    expect(() => loadConfig({ DVIC_NATS_URL: 'http://127.0.0.1:4222' })).toThrow(/DVIC_NATS_URL/);
    expect(() => loadConfig({ DVIC_CLUSTER_LEASE_S: '0' })).toThrow(/DVIC_CLUSTER_LEASE_S/);
  });

  it('never repeats DVIC_NATS_URL in its error: the URL may hold the bus password', () => {
    const err = (() => { try { loadConfig({ DVIC_NATS_URL: 'http://dvic:s3cret-bus-pw@nats:4222' }); } catch (e) { return e as Error; } })();
    expect(err?.message).toMatch(/DVIC_NATS_URL/);
    expect(err?.message).not.toContain('s3cret-bus-pw');
    expect(loadConfig({ DVIC_NATS_URL: 'nats://dvic:pw@nats-1:4222,nats://dvic:pw@nats-2:4222' }).natsUrl).toBe('nats://dvic:pw@nats-1:4222,nats://dvic:pw@nats-2:4222');
  });
});
