import type { DemoView } from '../generated/types.js';

/**
 * Why a demo's log file is not to be believed, or null when it is: its owner is neither root nor
 * the user the demo claims, so another user may be writing in its name.
 */
export function untrustedReason(demo: Pick<DemoView, 'trusted' | 'file_uid'>): string | null {
  return demo.trusted ? null : `file owned by uid ${demo.file_uid ?? 'unknown'}, not the demo's user`;
}
