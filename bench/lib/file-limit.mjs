// Each socket is an open file: a child holding thousands gets its soft open-file limit raised to
// the hard one (the hard limit, 20,000 on the lab machine, caps what one process can hold).
import { execFileSync } from 'node:child_process';

/** Raises a running process's soft open-file limit to its hard limit; returns the limit. */
export function raiseFileLimit(pid) {
  const hard = execFileSync('prlimit', ['--pid', String(pid), '--nofile', '--output', 'HARD', '--noheadings'], { encoding: 'utf8' }).trim();
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${hard}:${hard}`]);
  return hard === 'unlimited' ? Infinity : Number(hard);
}
