// One suite of `npm test` (scripts/test.mjs) as a child process, apart from the run's top-level
// steps so that test/run-suite.test.ts can run it on stand-in commands.
import { spawn } from 'node:child_process';
import readline from 'node:readline';

/**
 * How long the piped output may still flow after the suite exited. A process the suite leaked (a
 * server a test forgot to stop) keeps the pipes open: waiting for them to close would wait for it.
 */
export const DRAIN_MS = 500;

/**
 * Runs a suite, its output lines prefixed with its lane's tag when lanes run side by side; resolves
 * with its result once it exited (never rejects: a command that cannot start is a failed suite).
 */
export function runSuite([name, command, args], tag, cwd) {
  console.log(`\n==> ${tag}${name}`);
  const started = Date.now();
  const child = spawn(command, args, { cwd, stdio: tag ? ['ignore', 'pipe', 'pipe'] : 'inherit', env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? (process.stdout.isTTY ? '1' : '0') } });
  const readers = tag ? [child.stdout, child.stderr].map((input) => readline.createInterface({ input }).on('line', (line) => console.log(`${tag}${line}`))) : [];
  const result = (ok, detail) => ({ name, ok, detail, seconds: (Date.now() - started) / 1000 });
  return new Promise((resolve) => {
    child.once('error', (error) => {
      stopReading(child, readers);
      resolve(result(false, `could not run ${command}: ${error.message}`));
    });
    child.once('exit', (status, signal) => {
      const done = () => { stopReading(child, readers); resolve(result(status === 0, signal ? `killed by ${signal}` : `exit ${status}`)); };
      const drained = setTimeout(done, DRAIN_MS);
      child.once('close', () => { clearTimeout(drained); done(); });
    });
  });
}

function stopReading(child, readers) {
  for (const reader of readers) reader.close();
  child.stdout?.destroy();
  child.stderr?.destroy();
}
