// CPU and memory of a process as the kernel accounts them (/proc/<pid>/stat and status).
import fs from 'node:fs';
import os from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture the lab uses
const PAGE_SIZE = 4096;

/** CPU seconds (user + system) used so far and resident memory in bytes. */
export function processStats(pid) {
  let stat;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    throw new Error(`process ${pid} ended while it was measured`);
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  const rssBytes = Number(fields[21]) * PAGE_SIZE;
  return { cpuSeconds, rssBytes };
}

/**
 * Samples a process every intervalMs for durationMs; returns peak and mean RSS and the CPU used
 * as a percentage of one core over the whole window.
 */
export async function sampleProcess(pid, durationMs, intervalMs = 1000) {
  const first = processStats(pid);
  const started = performance.now();
  const rss = [first.rssBytes];
  while (performance.now() - started < durationMs) {
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, durationMs - (performance.now() - started))));
    rss.push(processStats(pid).rssBytes);
  }
  const last = processStats(pid);
  const seconds = (performance.now() - started) / 1000;
  return {
    cpuPercentOfCore: (100 * (last.cpuSeconds - first.cpuSeconds)) / seconds,
    rssPeakBytes: Math.max(...rss),
    rssMeanBytes: rss.reduce((a, b) => a + b, 0) / rss.length,
    seconds,
  };
}

export const mib = (bytes) => (bytes / 1024 / 1024).toFixed(1);

export function machine() {
  return `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${mib(os.totalmem())} MiB RAM, Node ${process.version}`;
}
