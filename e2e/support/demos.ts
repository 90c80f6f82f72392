// Demo programs written with each DVIC library, run as real processes.
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { Proc, PYTHON, repoDir } from './processes.js';

const pythonLib = path.join(repoDir, 'libs/python');

/** A Python demo writing `count` lines "<prefix> <i>" (level chosen per line), `rate` lines/s (0: as fast as it can). */
export function pythonDemo(env: Record<string, string>, demo: string, count: number, options: { rate?: number; maxBytes?: number; prefix?: string; holdS?: number } = {}): Proc {
  const script = `
import sys, time
sys.path.insert(0, ${JSON.stringify(pythonLib)})
import dvic_log
log = dvic_log.open(demo=${JSON.stringify(demo)}, max_bytes=${options.maxBytes ?? 10 * 1024 * 1024})
print(log.path, flush=True)
start = time.time()
levels = [log.info, log.info, log.info, log.warn, log.error]
for i in range(${count}):
    levels[i % 5]("${options.prefix ?? 'line'} %d" % i)
    if ${options.rate ?? 0} and i % 100 == 99:
        ahead = (i + 1) / ${options.rate || 1} - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
time.sleep(${options.holdS ?? 0})
`;
  return new Proc(spawn(PYTHON, ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * A Python demo writing "<prefix> <i>" at a steady rate until `stopFile` exists (or `max` lines),
 * then printing how many lines it wrote: a stream that goes on while a test acts.
 */
/**
 * A demo writing `prefix N` lines at `rate` per second until `max` or until stopFile exists. With
 * `hold`, it waits (at most 60 s) before line `hold.at` until `hold.file` exists, so that a test
 * can be sure lines are still to come after some event.
 */
export function steadyDemo(env: Record<string, string>, demo: string, options: { stopFile: string; rate: number; max: number; prefix: string; hold?: { at: number; file: string } }): Proc {
  const hold = options.hold ?? { at: -1, file: '' };
  const script = `
import os, sys, time
sys.path.insert(0, ${JSON.stringify(pythonLib)})
import dvic_log
log = dvic_log.open(demo=${JSON.stringify(demo)})
i = 0
while i < ${options.max} and not os.path.exists(${JSON.stringify(options.stopFile)}):
    if i == ${hold.at}:
        waited = 0
        while not os.path.exists(${JSON.stringify(hold.file)}) and waited < 1200:
            time.sleep(0.05)
            waited += 1
    log.info("${options.prefix} %d" % i)
    i += 1
    time.sleep(${1 / options.rate})
print("wrote %d" % i, flush=True)
`;
  return new Proc(spawn(PYTHON, ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** How many lines a steadyDemo wrote, once it exited. */
export async function linesWritten(demo: Proc): Promise<number> {
  await demo.exited;
  return Number(/wrote (\d+)/.exec(demo.output)?.[1] ?? NaN);
}

export function nodeDemo(env: Record<string, string>, demo: string, count: number): Proc {
  const script = `const { open } = require('@dvic/log'); const log = open({ demo: ${JSON.stringify(demo)} });
for (let i = 0; i < ${count}; i++) (i % 5 === 4 ? log.error : log.info).call(log, 'line ' + i);`;
  return new Proc(spawn(process.execPath, ['-e', script], { cwd: repoDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Compiles libs/c/example.c as C or C++ into dir; returns the binary. */
export function compileCExample(dir: string, cpp: boolean): string {
  const out = path.join(dir, cpp ? 'example-cpp' : 'example-c');
  const source = path.join(repoDir, 'libs/c/example.c');
  const args = cpp ? ['-x', 'c++', '-std=c++11'] : ['-std=c99'];
  execFileSync(cpp ? 'g++' : 'gcc', [...args, '-Wall', '-Wextra', '-Werror', '-I', path.join(repoDir, 'libs/c'), source, '-o', out, '-pthread']);
  return out;
}

export function wrapperDemo(env: Record<string, string>, demo: string, shellScript: string): Proc {
  return new Proc(spawn(PYTHON, [path.join(pythonLib, 'dvic-log'), '--demo', demo, '--quiet', '--', 'sh', '-c', shellScript],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}
