// The fan-out panes of the Commands page: commands followed live, merged from two sources.
// Types only from @dvic/protocol/shared (erased at build time) and its pure helpers: no validator.
import { isFinalStatus, type CommandOutputLiveMessage, type CommandUpdatedLiveMessage, type CommandView } from '@dvic/protocol/shared';

/** A followed command: the protocol's view, always with its output so far. */
export type Command = CommandView & { stdout: string; stderr: string };

export const isFinal = (c: Command): boolean => isFinalStatus(c.status);

type Stream = 'stdout' | 'stderr';

/** Applies `command.output` and `command.updated` live messages to the followed commands. */
export function applyCommandMessages(current: Command[], messages: (CommandOutputLiveMessage | CommandUpdatedLiveMessage)[]): Command[] {
  return current.map((c) => {
    let next = c;
    for (const m of messages) {
      if (m.type === 'command.output' && m.data.command_id === c.id && m.data.offset >= next[m.data.stream].length) {
        next = { ...next, [m.data.stream]: next[m.data.stream] + m.data.data };
      } else if (m.type === 'command.updated' && m.data.command.id === c.id && !isFinal(next)) {
        next = { ...next, ...m.data.command, stdout: next.stdout, stderr: next.stderr };
      }
    }
    return next;
  });
}

/**
 * Merges a command fetched over REST into the live one. The fetch fills in what came before the
 * subscription, but its answer may be older than live messages that arrived meanwhile: a final
 * status and longer output are never replaced by older ones.
 */
export function mergeFetched(live: Command, fetched: Command): Command {
  const status = isFinal(live) ? live : fetched;
  const longer = (stream: Stream) => (fetched[stream].length > live[stream].length ? fetched[stream] : live[stream]);
  return { ...live, ...status, stdout: longer('stdout'), stderr: longer('stderr') };
}
