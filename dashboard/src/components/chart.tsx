import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatValue, toCsv } from '../state/metric-history.js';

export interface Series {
  label: string;
  values: (number | null)[];
}

/** A moment marked on the time axis: a demo started or died, an alert. */
export interface ChartMarker {
  /** Seconds since the epoch. */
  at: number;
  kind: 'started' | 'died' | 'alert';
  label: string;
}

export interface ChartProps {
  title: string;
  /** Seconds since the epoch. */
  times: number[];
  series: Series[];
  /** Unit of the values: '%', '°C', 'B', 'B/s', '/s' or '' (shown on the axis and in the legend). */
  unit: string;
  max?: number;
  /** The time range shown, in seconds; without it, the data's (at least the last minute). */
  range?: [number, number];
  /** A range selected by dragging over the chart, in ms. */
  onZoom?: (from: number, to: number) => void;
  markers?: ChartMarker[];
}

const COLORS = ['#2f7ed8', '#e4572e', '#29a36a', '#9b5de5', '#f2a541', '#17becf', '#8c564b', '#e377c2'];
const MARKER_COLORS: Record<ChartMarker['kind'], string> = { started: '#29a36a', died: '#d62728', alert: '#f2a541' };
const HEIGHT = 200;

/**
 * A uPlot line chart over an explicit time range (so one point does not stretch the axis over
 * years), time labels spaced so they never overlap, the unit on the value axis, drag to zoom,
 * markers on the time axis and a CSV export of what it shows. Updated in place, not rebuilt.
 */
export function Chart({ title, times, series, unit, max, range, onZoom, markers = [] }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const current = useRef({ range, onZoom, markers });
  current.current = { range, onZoom, markers };
  const shape = series.map((s) => s.label).join('|');
  useEffect(() => {
    plot.current = new uPlot({
      title, width: box.current!.clientWidth || 400, height: HEIGHT,
      cursor: { drag: { x: true, y: false, setScale: false } },
      scales: {
        x: { time: true, range: (_u, lo, hi) => current.current.range ?? [Math.min(lo, hi - 60), hi] },
        y: max === undefined ? { range: (_u, lo, hi) => [Math.min(0, lo), hi > lo ? hi : lo + 1] } : { range: [0, max] },
      },
      axes: [
        { space: 90 },
        { label: unit || undefined, values: (_u, ticks) => ticks.map((t) => formatValue(t, unit)), size: 80 },
      ],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, value: (_u: uPlot, v: number | null) => formatValue(v, unit) }))],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 4 || !current.current.onZoom) return;
          const from = u.posToVal(u.select.left, 'x');
          const to = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          current.current.onZoom(Math.round(from * 1000), Math.round(to * 1000));
        }],
        draw: [(u) => drawMarkers(u, current.current.markers)],
      },
    }, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, box.current!);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: box.current!.clientWidth, height: HEIGHT }));
    resize.observe(box.current!);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
    };
  }, [shape, title, unit, max]);
  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [times, series, range?.[0], range?.[1], markers.length]);
  const exportCsv = () => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([toCsv(times, series)], { type: 'text/csv' }));
    link.download = `${title.replace(/[^\w.-]+/g, '_')}.csv`;
    link.click();
    URL.revokeObjectURL(link.href);
  };
  return (
    <div class="chart" data-title={title}>
      <div ref={box} />
      <button type="button" class="chart-csv" onClick={exportCsv} title="Download what this chart shows as CSV">CSV</button>
    </div>
  );
}

/** A thin line per marker across the plot, with its label at the top. */
function drawMarkers(u: uPlot, markers: ChartMarker[]): void {
  const { ctx, bbox } = u;
  const [lo, hi] = [u.scales.x!.min!, u.scales.x!.max!];
  ctx.save();
  ctx.font = `${10 * devicePixelRatio}px sans-serif`;
  for (const m of markers) {
    if (m.at < lo || m.at > hi) continue;
    const x = Math.round(u.valToPos(m.at, 'x', true));
    ctx.strokeStyle = MARKER_COLORS[m.kind];
    ctx.fillStyle = MARKER_COLORS[m.kind];
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillText(m.label, x + 3, bbox.top + 10 * devicePixelRatio);
  }
  ctx.restore();
}
