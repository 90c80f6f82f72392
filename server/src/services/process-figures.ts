import v8 from 'node:v8';

let lastRss = 0;

/**
 * Memory of the process for self-monitoring, without ever failing: process.memoryUsage() reads
 * /proc and throws EMFILE when the process is out of descriptors; the heap figure needs no file,
 * and the resident size then stays at its last reading.
 */
export function memoryFigures(): { rss: number; heapUsed: number } {
  try {
    const { rss, heapUsed } = process.memoryUsage();
    lastRss = rss;
    return { rss, heapUsed };
  } catch {
    return { rss: lastRss, heapUsed: v8.getHeapStatistics().used_heap_size };
  }
}
