/** Markers the agent adds, shown otherwise (lost lines) or not at all. */
const HIDDEN = new Set(['lost_lines', 'raw', 'split', 'dvic_end']);

/** A record's structured fields as chips; a click filters the logs by that field. */
export function FieldChips({ fields, onPick }: { fields: Record<string, unknown> | null; onPick?: (name: string, value: string) => void }) {
  const entries = Object.entries(fields ?? {}).filter(([k]) => !HIDDEN.has(k));
  if (!entries.length) return null;
  return (
    <span class="fields">
      {entries.map(([k, v]) => {
        const text = typeof v === 'string' ? v : JSON.stringify(v);
        return (
          <button type="button" key={k} class="chip" data-field={k} title={`Show only lines with ${k}=${text}`} onClick={() => onPick?.(k, text)}>
            {k}={text}
          </button>
        );
      })}
    </span>
  );
}
