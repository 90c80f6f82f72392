// The server's own output: the start banner on stderr, log lines on stdout (JSON, or pretty).
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, stopAll, waitFor } from './support/processes.js';

afterAll(() => stopAll());

const stdoutOf = (server: Awaited<ReturnType<typeof startServer>>) => {
  let out = '';
  server.child.stdout!.on('data', (d) => { out += d; });
  return () => out;
};

describe('server output', () => {
  it('writes the start banner on stderr and JSON log lines on stdout', async () => {
    const server = await startServer();
    const stdout = stdoutOf(server);
    await fetch(`${server.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"admin","password":"wrong"}' });
    const lines = await waitFor(() => (stdout().includes('failed sign-in') ? stdout().trim().split('\n') : null), 10_000, 'a log line');
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(stdout()).not.toContain('DVIC Demo Monitor is running');
    expect(server.output).toContain('DVIC Demo Monitor is running'); // stdout + stderr
    await server.kill();
  });

  it('writes readable log lines with DVIC_LOG_FORMAT=pretty, and refuses an unknown format', async () => {
    const server = await startServer({ env: { DVIC_LOG_FORMAT: 'pretty' } });
    const stdout = stdoutOf(server);
    await fetch(`${server.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"admin","password":"wrong"}' });
    const line = await waitFor(() => stdout().split('\n').find((l) => l.includes('failed sign-in')), 10_000, 'a log line');
    expect(line).toMatch(/^\d\d:\d\d:\d\d WARN {2}failed sign-in {2}.*username=admin/);
    await server.kill();
    await expect(startServer({ env: { DVIC_LOG_FORMAT: 'fancy' } })).rejects.toThrow(/DVIC_LOG_FORMAT must be json or pretty, not fancy/);
  });
});
