import crypto from 'node:crypto';
import fs from 'node:fs';

/** The agent file this server ships, as its nodes get it: version, sha256, bytes. */
export interface AgentRelease {
  path: string;
  version: string;
  sha256: string;
  size: number;
  bytes: Buffer;
}

const MAX_AGENT_BYTES = 16 * 1024 * 1024;

/** AGENT_VERSION = "x" from the agent file's header. */
export function parseAgentVersion(source: string): string | null {
  const match = /^AGENT_VERSION = "([0-9A-Za-z][0-9A-Za-z._+-]{0,63})"$/m.exec(source);
  return match ? match[1]! : null;
}

/** Reads the shipped agent once (it is read again when the file changes on disk, say after a server upgrade in place). */
export function readAgentRelease(path: string): AgentRelease {
  const stat = fs.statSync(path);
  if (!stat.isFile()) throw new Error(`the agent file ${path} is not a regular file`);
  if (stat.size > MAX_AGENT_BYTES) throw new Error(`the agent file ${path} is over ${MAX_AGENT_BYTES} bytes`);
  const bytes = fs.readFileSync(path);
  const version = parseAgentVersion(bytes.subarray(0, 8192).toString('utf8'));
  if (!version) throw new Error(`the agent file ${path} has no AGENT_VERSION line`);
  return { path, version, sha256: crypto.createHash('sha256').update(bytes).digest('hex'), size: bytes.length, bytes };
}
