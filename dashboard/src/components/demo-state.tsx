import { DEMO_HEALTH_TEXT, demoHealth, duration, type LabDemo } from '@dvic/protocol/shared';

const ICON = { down: '✖', 'crash-loop': '↻', crashed: '✖', restarting: '↻', running: '●', stopped: '■' } as const;

/** A demo's health as a word and a shape, coloured as a third cue; how long it has been so. */
export function DemoStateBadge({ demo, now }: { demo: LabDemo; now: number }) {
  const health = demoHealth(demo);
  const since = demo.state === 'running' || demo.state === 'restarting' ? demo.started_at : demo.ended_at;
  const words = health === 'down' ? `down · ${demo.state}` : health === 'crash-loop' ? `crash loop · ${demo.state}` : DEMO_HEALTH_TEXT[health];
  return (
    <span class={`demo-state health-${health}`} data-health={health}>
      <span aria-hidden="true">{ICON[health]}</span> {words}
      {since !== null && <span class="muted"> {duration(now - since)}</span>}
    </span>
  );
}

/** "Mon–Fri 09:00–18:00", "always", or "not expected". */
export function expectationText(demo: Pick<LabDemo, 'expected' | 'schedule' | 'expected_by'>): string {
  if (!demo.expected) return 'not expected';
  const by = demo.expected_by === 'label' ? ' (label)' : '';
  return demo.schedule ? `${demo.schedule.days.join(' ')} ${demo.schedule.open}–${demo.schedule.close}${by}` : `always${by}`;
}
