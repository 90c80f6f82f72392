import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/**
 * Renders only the rows in view (plus a margin), in a scrolling box whose height holds all of
 * them: 1,000 nodes cost the DOM of about 30.
 */
export function VirtualList<T>({ items, rowHeight, render, label }: {
  items: T[]; rowHeight: number; render: (item: T, index: number) => ComponentChildren; label: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(800);
  useEffect(() => {
    const el = box.current!;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const margin = 8;
  const first = Math.max(0, Math.floor(scroll / rowHeight) - margin);
  const last = Math.min(items.length, Math.ceil((scroll + height) / rowHeight) + margin);
  return (
    <div ref={box} class="virtual" role="rowgroup" aria-label={label} onScroll={(e) => setScroll((e.currentTarget as HTMLDivElement).scrollTop)}>
      <div style={{ height: `${items.length * rowHeight}px`, position: 'relative' }}>
        <div style={{ transform: `translateY(${first * rowHeight}px)` }}>
          {items.slice(first, last).map((item, i) => render(item, first + i))}
        </div>
      </div>
    </div>
  );
}
