import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs in strict mode, with its errors turned into usage errors (exit code 2). */
export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(args: string[], options: Options, usage: string): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]!.replace(/ To specify a positional argument.*$/, '')}\n${usage}`);
  }
}

/** "k=v" pairs -> object; "k-" (with allowRemoval) -> null, meaning remove k. */
export function parseLabels(pairs: string[], allowRemoval = false): Record<string, string | null> {
  const labels: Record<string, string | null> = {};
  for (const pair of pairs) {
    if (allowRemoval && /^[A-Za-z0-9_.-]+-$/.test(pair)) {
      labels[pair.slice(0, -1)] = null;
      continue;
    }
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`label "${pair}" is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}
