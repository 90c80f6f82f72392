/** Counters about agent traffic, served at GET /api/v1/server/stats. */
export class HubStats {
  connectionsAccepted = 0;
  authenticated = 0;
  authFailures: Record<string, number> = {};
  messagesReceived = 0;
  invalidMessages = 0;
  bytesReceived = 0;
  byType: Record<string, number> = {};

  countAuthFailure(reason: string): void {
    this.authFailures[reason] = (this.authFailures[reason] ?? 0) + 1;
  }

  countMessage(type: string, bytes: number): void {
    this.messagesReceived++;
    this.bytesReceived += bytes;
    this.byType[type] = (this.byType[type] ?? 0) + 1;
  }
}
