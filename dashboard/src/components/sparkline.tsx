/** A tiny SVG line of recent values (no axes): the trend at a glance. */
export function Sparkline({ values, max, label }: { values: number[]; max?: number; label: string }) {
  const width = 80;
  const height = 20;
  if (values.length < 2) return <svg class="spark" width={width} height={height} role="img" aria-label={`${label}: not enough data yet`} />;
  const top = max ?? Math.max(...values, 1);
  const bottom = Math.min(...values, max === undefined ? Math.min(...values) : 0);
  const span = top - bottom || 1;
  const points = values.map((v, i) => `${((i / (values.length - 1)) * width).toFixed(1)},${(height - ((v - bottom) / span) * (height - 2) - 1).toFixed(1)}`);
  return (
    <svg class="spark" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${label}: last ${values.length} values, latest ${values.at(-1)!.toFixed(0)}`}>
      <polyline points={points.join(' ')} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}
