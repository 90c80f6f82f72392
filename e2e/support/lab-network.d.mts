// Types of lab-network.mjs.
import type { ChildProcess } from 'node:child_process';

export interface LabNetwork {
  /** Network namespace names. */
  source: string;
  target: string;
  /** The server's address (host ns), reachable from the source ns only. */
  hostIp: string;
  /** The source ns's address on the lab side: a relay to the server listens there. */
  labServerIp: string;
  targetIp: string;
  unusedIp: string;
  relay(port: number): ChildProcess;
  exec(ns: string, argv: string[]): string[];
  destroy(): void;
}

export function createLabNetwork(): LabNetwork;
