import type { CommandView } from '../generated/types.js';

export type CommandStatus = CommandView['status'];

/** Statuses a command never leaves. */
export const FINAL_COMMAND_STATUSES = ['succeeded', 'failed', 'timed_out', 'cancelled', 'lost', 'expired', 'error'] as const satisfies readonly CommandStatus[];

export const isFinalStatus = (status: CommandStatus): boolean => (FINAL_COMMAND_STATUSES as readonly CommandStatus[]).includes(status);
