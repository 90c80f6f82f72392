import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  values: (number | null)[];
}

/** A live uPlot line chart: times in seconds, one or more series. Updated in place, not rebuilt. */
export function Chart({ title, times, series, unit, max }: { title: string; times: number[]; series: Series[]; unit: string; max?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');
  useEffect(() => {
    const colors = ['#2f7ed8', '#e4572e', '#29a36a', '#9b5de5', '#f2a541', '#17becf', '#8c564b', '#e377c2'];
    plot.current = new uPlot({
      title, width: box.current!.clientWidth || 400, height: 180,
      // At least the last minute on the x axis, so the first points do not spread over years.
      scales: { x: { time: true, range: (_u, lo, hi) => [Math.min(lo, hi - 60), hi] }, y: max === undefined ? {} : { range: [0, max] } },
      axes: [{}, { values: (_u, ticks) => ticks.map((t) => `${t}${unit}`), size: 60 }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: colors[i % colors.length], width: 1.5, value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${v.toFixed(1)}${unit}`) }))],
    }, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, box.current!);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: box.current!.clientWidth, height: 180 }));
    resize.observe(box.current!);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
    };
  }, [shape, title]);
  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [times, series]);
  return <div ref={box} class="chart" />;
}
