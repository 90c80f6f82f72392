import { CloseCode } from '@dvic/protocol/shared';

/** The live connection as the page tells the user about it. */
export type LiveStatus = { state: 'connecting' | 'open' } | { state: 'lost'; detail: string };

/** Why the live connection closed, in words (pure: unit-tested). */
export function closeText(code: number, reason: string): string {
  if (code === CloseCode.slowConsumer) return 'this page fell behind the live stream: catching up';
  if (code === CloseCode.sessionEnded) return 'your session has ended';
  if (code === CloseCode.goingAway) return 'the server is restarting';
  if (code === CloseCode.tryAgainLater) return 'the server is busy';
  return reason || 'the server cannot be reached';
}

/** Why a terminal closed, in words. */
export function terminalCloseText(code: number, reason: string): string {
  if (code === CloseCode.terminalRefused) return `refused: ${reason || 'the node cannot open a terminal'}`;
  if (code === CloseCode.sessionEnded) return 'your session has ended: sign in again';
  return reason || 'connection ended';
}
