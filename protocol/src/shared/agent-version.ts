/**
 * Agent versions, ordered as the agent orders them (agent/dvic_agent.py version_key): numeric
 * parts as numbers ("0.10.0" after "0.9.1"), text parts after numeric ones.
 */
export function compareAgentVersions(a: string, b: string): number {
  const key = (v: string) => v.split(/[.+-]/).map((p) => (/^\d+$/.test(p) ? { n: 0, num: Number(p), text: '' } : { n: 1, num: 0, text: p }));
  const [x, y] = [key(a), key(b)];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const [p, q] = [x[i]!, y[i]!];
    if (p.n !== q.n) return p.n - q.n;
    if (p.num !== q.num) return p.num - q.num;
    if (p.text !== q.text) return p.text < q.text ? -1 : 1;
  }
  return x.length - y.length;
}

/** A node runs an older agent than the one the server ships (unknown: not flagged). */
export const isAgentBehind = (running: string | null | undefined, shipped: string | null | undefined): boolean =>
  Boolean(running && shipped && compareAgentVersions(running, shipped) < 0);
