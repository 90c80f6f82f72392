import { describe, expect, it } from 'vitest';
import { CloseCode } from '@dvic/protocol/shared';
import { closeText, terminalCloseText } from '../src/api/live-status.js';

describe('why a socket closed, in words', () => {
  it('tells a live stream that fell behind, a session that ended and a server that went away', () => {
    expect(closeText(CloseCode.slowConsumer, 'too slow')).toBe('this page fell behind the live stream: catching up');
    expect(closeText(CloseCode.sessionEnded, '')).toBe('your session has ended');
    expect(closeText(CloseCode.goingAway, 'server shutting down')).toBe('the server is restarting');
    expect(closeText(1006, '')).toBe('the server cannot be reached');
  });

  it('gives the reason a terminal was refused', () => {
    expect(terminalCloseText(CloseCode.terminalRefused, 'node is offline')).toBe('refused: node is offline');
    expect(terminalCloseText(CloseCode.sessionEnded, '')).toBe('your session has ended: sign in again');
    expect(terminalCloseText(1000, '')).toBe('connection ended');
  });
});
