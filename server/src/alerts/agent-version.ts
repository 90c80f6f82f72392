import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const AGENT_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../agent/dvic_agent.py');

/** The AGENT_VERSION line of an agent file's text, or null. Pure. */
export function parseAgentVersion(text: string): string | null {
  return /^AGENT_VERSION\s*=\s*["']([^"'\n]{1,64})["']/m.exec(text)?.[1] ?? null;
}

/** The agent version this server ships (agent/dvic_agent.py), or null when the file cannot be read. */
export function shippedAgentVersion(file = AGENT_FILE): string | null {
  try {
    return parseAgentVersion(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** -1, 0 or 1 comparing dotted versions numerically (1.10.0 > 1.9.2); a missing part counts as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(/[.+-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
