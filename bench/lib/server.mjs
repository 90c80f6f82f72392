// Starts the real server (server/dist/main.js) on a free loopback port with a throwaway data dir.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { raiseFileLimit } from './file-limit.mjs';

export const repoDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PASSWORD = 'bench-password';

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function startServer(env = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-bench-'));
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(repoDir, 'server/dist/main.js')], {
    env: { ...process.env, DVIC_DATA_DIR: dataDir, DVIC_PORT: String(port), DVIC_HOST: '127.0.0.1', DVIC_ADMIN_PASSWORD: PASSWORD, DVIC_LOCAL_AGENT: '0', DVIC_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  raiseFileLimit(child.pid);
  // The server's log lines (warnings and errors), kept when it ends by itself: the bench says where.
  const logFile = path.join(os.tmpdir(), `dvic-bench-server-${port}.log`);
  child.stdout.pipe(fs.createWriteStream(logFile));
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`  server pid ${child.pid} (port ${port}) ended by itself (${signal ?? `exit ${code}`}): its log is ${logFile}`);
  });
  const base = `http://127.0.0.1:${port}`;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 30 s')), 30_000);
    // The start banner is on stderr (log lines on stdout).
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      if (chunk.toString().includes('is running')) { clearTimeout(timer); resolve(); }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const login = await fetch(`${base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const api = async (method, url, body) => {
    // State-changing requests are JSON, {} when there is nothing to send.
    const payload = body ?? (method === 'GET' ? undefined : {});
    const res = await fetch(base + url, { method, headers: { cookie, ...(payload ? { 'content-type': 'application/json' } : {}) }, body: payload && JSON.stringify(payload) });
    if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  return {
    base, pid: child.pid, dataDir, api, cookie,
    agentUrl: `ws://127.0.0.1:${port}/api/v1/agent`,
    /** SIGTERM, then SIGKILL after killAfterMs; resolves with the seconds the orderly stop took (null: killed). */
    async stop(killAfterMs = 60_000) {
      const t0 = performance.now();
      stopping = true;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      const signal = await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.signalCode) : child.once('exit', (_, sig) => r(sig))));
      clearTimeout(killer);
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(logFile, { force: true });
      return signal === 'SIGKILL' ? null : (performance.now() - t0) / 1000;
    },
  };
}
