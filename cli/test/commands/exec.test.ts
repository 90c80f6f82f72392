import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../server/test/support/test-server.js';
import { serverForTests } from '../support/cli-server.js';
import { runCommands } from '../support/exec-agent.js';
import { dvic, startDvic } from '../support/run-cli.js';

const server = serverForTests();

describe('dvic exec', () => {
  it('streams the output of a command on one node and exits with its exit code', async () => {
    const { agent } = await server().agent('cli-exec');
    runCommands(agent, (r) => (r.argv?.join(' ') === 'sh -c exit-3' ? { stdout: 'out\n', stderr: 'err\n', exit_code: 3 } : { stdout: `${r.command}\n`, exit_code: 0 }));
    expect(await dvic(['exec', 'cli-exec', '--', 'sh', '-c', 'exit-3'], server().env)).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(await dvic(['exec', 'cli-exec', '-c', 'echo $((6 * 7))'], server().env)).toEqual({ code: 0, stdout: 'echo $((6 * 7))\n', stderr: '' });
  });

  it('fans out by label with each line prefixed by its node, and exits 0 only when all succeeded', async () => {
    for (const name of ['cli-fan-1', 'cli-fan-2']) {
      const { agent } = await server().agent(name, { fleet: 'x' });
      runCommands(agent, () => ({ stdout: `hello from ${name}\n`, exit_code: name === 'cli-fan-2' ? 1 : 0 }));
    }
    const res = await dvic(['exec', '--label', 'fleet=x', '--', 'echo', 'hello'], server().env);
    expect(res.stdout.trim().split('\n').sort()).toEqual(['[cli-fan-1] hello from cli-fan-1', '[cli-fan-2] hello from cli-fan-2']);
    expect([res.code, res.stderr]).toEqual([1, 'dvic: [cli-fan-2] exit code 1\n']);
  });

  it('cancels the command on Ctrl-C and exits as killed', async () => {
    const { agent } = await server().agent('cli-cancel');
    runCommands(agent, () => null);
    const run = startDvic(['exec', 'cli-cancel', '--', 'sleep', '100'], server().env);
    await waitFor(async () => (await server().server.api('GET', '/api/v1/commands?q=sleep')).json().commands.some((c: { status: string }) => c.status === 'running'), 5000, 'running');
    run.interrupt();
    const done = await run.done;
    expect([done.code, done.stderr]).toEqual([137, 'dvic: cancelling…\ndvic: killed by SIGKILL\n']);
  });
});
