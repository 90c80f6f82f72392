// Types of target-host.mjs (plain JavaScript: bench/onboarding runs it without a build).
export const TARGET_USER: string;
export const TARGET_PASSWORD: string;
/** A user whose sudo asks for root's password (Defaults rootpw), which is not TARGET_PASSWORD. */
export const ROOTPW_USER: string;

/** Why targets cannot be booted here (not root, a tool missing), or null. */
export function canBootTargets(): string | null;
/** The cached Debian tree, built on first use (about a minute). */
export function debianTree(): string;

export interface Target {
  port: number;
  hostname: string;
  /** The target's root directory, seen from the host. */
  dir: string;
  /** Reads a file of the target's tree. */
  read(file: string): string;
  exists(file: string): boolean;
  /** Runs a shell script as root inside the running target (its namespaces, its PID 1's view). */
  run(script: string, timeoutMs?: number): { status: number | null; output: string };
  stop(): Promise<void>;
}

/** netns: boot it in that network namespace (sshd on all its addresses), see lab-network.mjs. */
export function bootTarget(options?: { withoutPython?: boolean; withoutSystemd?: boolean; port?: number; netns?: string }): Promise<Target>;
