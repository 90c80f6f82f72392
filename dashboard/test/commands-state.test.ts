import { describe, expect, it } from 'vitest';
import type { CommandOutputLiveMessage, CommandUpdatedLiveMessage } from '@dvic/protocol/shared';
import { applyCommandMessages, mergeFetched, type Command } from '../src/state/commands-state.js';
import { command } from '../../protocol/test/fixtures.js';

const output = (data: string, offset: number, stream: 'stdout' | 'stderr' = 'stdout'): CommandOutputLiveMessage => ({ type: 'command.output', data: { command_id: 'c1', node_id: 'n1', stream, offset, data } });
const updated = (extra: Partial<Command>): CommandUpdatedLiveMessage => ({ type: 'command.updated', data: { command: command(extra) } });

describe('followed commands', () => {
  it('appends streamed output once, even when a chunk comes twice', () => {
    const [c] = applyCommandMessages([command()], [output('hel', 0), output('lo\n', 3), output('lo\n', 3), output('oops', 0, 'stderr')]);
    expect(c).toMatchObject({ stdout: 'hello\n', stderr: 'oops' });
  });

  it('takes the final status from an update but keeps the streamed output', () => {
    const [c] = applyCommandMessages([command({ stdout: 'hi\n' })], [updated({ status: 'succeeded', exit_code: 0, duration_ms: 12 })]);
    expect(c).toMatchObject({ status: 'succeeded', exit_code: 0, duration_ms: 12, stdout: 'hi\n' });
  });

  it('keeps a final status when an older fetch answers after it', () => {
    const live = command({ status: 'succeeded', exit_code: 0, stdout: 'hi\n' });
    expect(mergeFetched(live, command({ status: 'running', stdout: 'hi\n' }))).toMatchObject({ status: 'succeeded', exit_code: 0, stdout: 'hi\n' });
  });

  it('fills in output and status that came before the subscription', () => {
    const fetched = command({ status: 'failed', exit_code: 3, stdout: 'early\n', stderr: 'bad\n' });
    expect(mergeFetched(command(), fetched)).toMatchObject({ status: 'failed', exit_code: 3, stdout: 'early\n', stderr: 'bad\n' });
  });
});
