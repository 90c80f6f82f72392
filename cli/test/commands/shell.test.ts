import { describe, expect, it } from 'vitest';
import { serverForTests } from '../support/cli-server.js';
import { dvic } from '../support/run-cli.js';

const server = serverForTests();

// The shell itself, in a pseudo-terminal with the real agent, is in e2e/cli.test.ts.
describe('dvic shell', () => {
  it('says why the server refused the terminal', async () => {
    await server().server.enroll('cli-asleep');
    expect(await dvic(['shell', 'cli-asleep'], server().env)).toMatchObject({ code: 1, stderr: 'dvic: terminal refused: node is offline\n' });
  });

  it('says which node was not found before opening anything', async () => {
    expect(await dvic(['shell', 'nowhere'], server().env)).toMatchObject({ code: 1, stderr: 'dvic: no node "nowhere" (give its name, its id, or the start of its id)\n' });
  });
});
