import { describe, expect, it } from 'vitest';
import { parseLabels } from '../src/args.js';
import { UsageError } from '../src/errors.js';

describe('labels', () => {
  it('parses key=value and key- for removal', () => {
    expect(parseLabels(['room=hall b', 'kind=pi', 'old-'], true)).toEqual({ room: 'hall b', kind: 'pi', old: null });
    expect(() => parseLabels(['nope'])).toThrow(UsageError);
  });
});
