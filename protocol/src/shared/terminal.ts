// Text frames of the terminal socket (/api/v1/nodes/{id}/terminal) between a viewer (the
// dashboard, `dvic shell`) and the server; binary frames are the keystrokes and the screen output.
// Written here once rather than as schemas: the agent never sees them.

/** From the server: the shell started, or the terminal ended (and why). */
export type TerminalServerEvent =
  | { type: 'opened'; pid: number | null }
  | { type: 'closed'; exit_code: number | null; reason: string };

/** From the viewer: its size changed, or it drew this many bytes of output (credit for more). */
export type TerminalViewerEvent =
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'ack'; bytes: number };
