// What the wall shows (pure, unit-tested): problems first and big, everything fine as a summary.
import {
  celsius, DEMO_HEALTH_TEXT, demoHealth, diskPercent, HARDWARE_THRESHOLDS as T, hottest, isDemoProblem, percent, plural,
  type DeviceView, type LabDemo, type NodeView,
} from '@dvic/protocol/shared';

/** One problem tile. `kind` says what it is about; new kinds (keepalive devices...) add a source. */
export interface WallProblem {
  key: string;
  kind: 'demo' | 'node' | (string & {});
  severity: 'bad' | 'warn';
  /** What is wrong, in words (colour is never the only signal). */
  status: string;
  title: string;
  /** Where, e.g. the node of a demo. */
  detail: string;
  since: number | null;
}

export interface WallInput {
  nodes: NodeView[];
  demos: LabDemo[];
  /** Keepalive devices (ESP32 and scripts); none when the lab has none. */
  devices: DeviceView[];
  now: number;
}

export type ProblemSource = (input: WallInput) => WallProblem[];

export function demoProblems({ nodes, demos }: WallInput): WallProblem[] {
  const nodeById = new Map(nodes.map((n) => [n.id, n]));
  const problems: WallProblem[] = [];
  for (const d of demos) {
    const node = nodeById.get(d.node_id);
    if (node?.status === 'revoked' || !isDemoProblem(d)) continue;
    const health = demoHealth(d);
    problems.push({
      key: `demo:${d.id}`, kind: 'demo', severity: health === 'crashed' ? 'warn' : 'bad', // down and crash loops first
      status: health === 'down' ? `down (${d.state})` : DEMO_HEALTH_TEXT[health], title: d.name, detail: `on ${node?.name ?? 'an unknown node'}`,
      since: d.ended_at ?? d.started_at,
    });
  }
  return problems;
}

/** Offline nodes (a revoked node is not down), hot or full machines. */
export function nodeProblems({ nodes }: WallInput): WallProblem[] {
  const problems: WallProblem[] = [];
  for (const n of nodes) {
    if (n.status === 'revoked') continue;
    if (n.status === 'offline') {
      problems.push({ key: `node:${n.id}`, kind: 'node', severity: 'bad', status: 'offline', title: n.name, detail: 'node', since: n.status_since });
      continue;
    }
    const temp = hottest(n.hardware);
    const disk = diskPercent(n.hardware);
    if (temp !== null && temp >= T.temp.warn) {
      problems.push({ key: `temp:${n.id}`, kind: 'node', severity: temp >= T.temp.bad ? 'bad' : 'warn', status: `hot ${celsius(temp)}`, title: n.name, detail: 'temperature', since: null });
    }
    if (disk !== null && disk >= T.disk.warn) {
      problems.push({ key: `disk:${n.id}`, kind: 'node', severity: disk >= T.disk.bad ? 'bad' : 'warn', status: `disk ${percent(disk)}`, title: n.name, detail: 'disk full', since: null });
    }
  }
  return problems;
}

/** Devices that count: like its demos, a device on a revoked node is left out with the node. */
function watchedDevices({ nodes, devices }: WallInput): DeviceView[] {
  const revoked = new Set(nodes.filter((n) => n.status === 'revoked').map((n) => n.id));
  return devices.filter((d) => d.node_id === null || !revoked.has(d.node_id));
}

/** Keepalive devices that missed their grace (down) or their period (late); paused ones are nobody's problem. */
export function deviceProblems(input: WallInput): WallProblem[] {
  return watchedDevices(input).filter((d) => d.status === 'down' || d.status === 'late').map((d) => ({
    key: `device:${d.id}`, kind: 'device', severity: d.status === 'down' ? 'bad' : 'warn',
    status: d.status === 'down' ? 'keepalive down' : 'keepalive late', title: d.name,
    detail: d.last_message ? `device · ${d.last_message}` : 'device', since: d.status_since,
  }));
}

/** Where problems come from; another kind of item adds its function here. */
export const PROBLEM_SOURCES: ProblemSource[] = [demoProblems, nodeProblems, deviceProblems];

/** Every problem, the worst first, then the oldest. */
export function wallProblems(input: WallInput, sources: ProblemSource[] = PROBLEM_SOURCES): WallProblem[] {
  return sources.flatMap((source) => source(input)).sort((a, b) =>
    Number(a.severity === 'warn') - Number(b.severity === 'warn') || (a.since ?? Infinity) - (b.since ?? Infinity) || a.title.localeCompare(b.title));
}

/** The calm line for what is fine: "196 demos running · 3 stopped · 40 of 41 nodes online". */
export function wallSummary(input: WallInput): string {
  const { nodes, demos } = input;
  let running = 0;
  let stopped = 0;
  for (const d of demos) {
    const health = demoHealth(d);
    if (health === 'running' || health === 'restarting') running++;
    else if (health === 'stopped') stopped++;
  }
  const counted = nodes.filter((n) => n.status !== 'revoked');
  const online = counted.filter((n) => n.status === 'online').length;
  const watched = watchedDevices(input).filter((d) => d.status !== 'paused' && d.status !== 'new');
  const devicesUp = watched.filter((d) => d.status === 'up').length;
  return [
    `${plural(running, 'demo')} running`, ...(stopped ? [`${stopped} stopped`] : []), `${online} of ${plural(counted.length, 'node')} online`,
    ...(watched.length ? [`${devicesUp} of ${plural(watched.length, 'device')} up`] : []),
  ].join(' · ');
}

export interface TileLayout {
  cols: number;
  rows: number;
  tileWidth: number;
  tileHeight: number;
  /** Tiles on one page; more than this rotate through pages. */
  perPage: number;
  pages: number;
}

/**
 * The biggest tiles that fit `count` into width x height without scrolling (tiles about
 * `aspect` times wider than tall); below the smallest readable height, pages of that size.
 */
export function tileLayout(count: number, width: number, height: number, minHeight: number, gap = 12, aspect = 2.4): TileLayout {
  const fit = (cols: number) => {
    const rows = Math.max(1, Math.ceil(count / cols));
    const tileWidth = (width - gap * (cols - 1)) / cols;
    const tileHeight = Math.min((height - gap * (rows - 1)) / rows, tileWidth / aspect * 1.6);
    return { cols, rows, tileWidth, tileHeight };
  };
  let best = fit(1);
  for (let cols = 2; cols <= Math.max(1, count); cols++) {
    const next = fit(cols);
    if (Math.min(next.tileHeight, next.tileWidth / aspect) > Math.min(best.tileHeight, best.tileWidth / aspect)) best = next;
  }
  if (best.tileHeight >= minHeight || count <= 1) return { ...best, perPage: Math.max(1, count), pages: 1 };
  // Too many to read: the rows and columns of the smallest readable tile, page after page.
  const rows = Math.max(1, Math.floor((height + gap) / (minHeight + gap)));
  const cols = Math.max(1, Math.floor((width + gap) / (minHeight * aspect + gap)));
  const perPage = rows * cols;
  return {
    cols, rows, tileWidth: (width - gap * (cols - 1)) / cols, tileHeight: (height - gap * (rows - 1)) / rows,
    perPage, pages: Math.ceil(count / perPage),
  };
}
