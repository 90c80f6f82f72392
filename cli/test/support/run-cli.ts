// Runs `dvic` in this process: main(argv, ctx) with streams the test reads and a Ctrl-C it presses.
import { PassThrough, Writable } from 'node:stream';
import type { Context } from '../../src/context.js';
import { main } from '../../src/main.js';

export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
  /** What was written to the terminal (when the test gave one). */
  terminal?: string;
}

/** Text written to a stream, kept; never a terminal (so never colour). */
class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

export interface Running {
  stdout(): string;
  stderr(): string;
  /** Ctrl-C. */
  interrupt(): void;
  done: Promise<Finished>;
}

/** Starts `dvic args...`; input, when given, is what is piped in (then end of file). */
export function startDvic(args: string[], env: NodeJS.ProcessEnv, input?: string, terminalInput?: string): Running {
  const stdout = new Capture();
  const stderr = new Capture();
  const stdin = new PassThrough();
  stdin.end(input ?? '');
  const interrupts = new Set<() => void>();
  const terminalOutput = new Capture();
  const ctx: Context = {
    env, stdout, stderr, stdin, color: false, now: Date.now,
    onInterrupt: (handler) => {
      interrupts.add(handler);
      return () => interrupts.delete(handler);
    },
    // No terminal unless the test types on one: what the user types, and what is written to it.
    ...(terminalInput === undefined ? {} : { terminal: () => {
      const input = new PassThrough();
      input.end(terminalInput);
      return { input, output: terminalOutput, close: () => input.destroy() };
    } }),
  };
  const done = main(args, ctx).then((code) => ({ code, stdout: stdout.text, stderr: stderr.text, ...(terminalInput === undefined ? {} : { terminal: terminalOutput.text }) }));
  return { stdout: () => stdout.text, stderr: () => stderr.text, interrupt: () => [...interrupts].forEach((h) => h()), done };
}

/** Runs `dvic args...` to its end. */
export const dvic = (args: string[], env: NodeJS.ProcessEnv, input?: string, terminalInput?: string): Promise<Finished> => startDvic(args, env, input, terminalInput).done;
