import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { tempHome } from './support/cli-server.js';
import { dvic } from './support/run-cli.js';

const nobody = () => ({ HOME: tempHome(), NO_COLOR: '1' });

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('dvic', () => {
  it('answers usage errors with exit code 2 in one line, and --help with 0, on every command', async () => {
    for (const args of [['bogus'], ['nodes', '--bogus'], ['node'], ['logs', '--level', 'LOUD'], ['logs', '-f', '--until', '1h'], ['exec', 'pi'], ['shell'], ['login']]) {
      const res = await dvic(args, nobody());
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    for (const args of [['--help'], ['nodes', '--help'], ['nodes', 'watch', '--help'], ['node', '-h'], ['logs', '--help'], ['demos', '--help'], ['exec', '--help'], ['shell', '--help'], ['login', '--help'], ['logout', '--help'], ['nodes', 'add', '--help']]) {
      const res = await dvic(args, nobody());
      expect(res.code, args.join(' ')).toBe(0);
      expect(res.stdout, args.join(' ')).toMatch(/usage: dvic/);
    }
  });

  it('tells to sign in when there is no login, and names the server it cannot reach', async () => {
    expect(await dvic(['nodes'], nobody())).toMatchObject({ code: 1, stderr: 'dvic: not signed in: run dvic login <url>\n' });
    const port = await closedPort();
    const down = await dvic(['nodes'], { ...nobody(), DVIC_URL: `http://127.0.0.1:${port}`, DVIC_TOKEN: 'dvic_x' });
    expect([down.code, down.stderr]).toEqual([1, `dvic: cannot reach http://127.0.0.1:${port}: ECONNREFUSED\n`]);
  });

  it('prints its version', async () => {
    expect((await dvic(['--version'], nobody())).stdout).toMatch(/^dvic \d+\.\d+\.\d+\n$/);
  });
});
