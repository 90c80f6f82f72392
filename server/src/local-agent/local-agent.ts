import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import type { NodeView } from '@dvic/protocol';
import type { NodeRegistry } from '../live/node-registry.js';
import { generateNodeKeypair } from '../services/node-keys.js';

const MAX_RESTART_DELAY_MS = 30_000;

export interface LocalAgentOptions {
  dataDir: string;
  serverUrl: string;
  python: string;
  metricsIntervalS: number;
  agentPath?: string;
  /** The agent's terminal_shell (else the login shell of the user it runs as). */
  terminalShell?: string;
  /** When the server serves TLS itself: the agent pins this certificate (and may verify it as a CA). */
  tlsCertSha256?: string;
  tlsCaFile?: string;
  /**
   * On a database other replicas share: this replica's id. Its local node is only the one its own
   * agent.json names (each replica's machine is a node of its own, named after the replica); it
   * never takes, nor re-keys, another replica's.
   */
  sharedAsReplica?: string;
}

/** The agent file shipped in this repository, next to server/. */
export function defaultAgentPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../agent/dvic_agent.py');
}

/**
 * Enrolls the machine the server runs on (once; keys kept in the data dir) and runs the real
 * agent as a child process over the real protocol, restarting it if it dies.
 */
export class LocalAgent {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartDelayMs = 1000;
  private restartTimer: NodeJS.Timeout | undefined;
  readonly configPath: string;

  constructor(private readonly registry: NodeRegistry, private readonly options: LocalAgentOptions, private readonly log: FastifyBaseLogger) {
    this.configPath = path.join(options.dataDir, 'local-agent', 'agent.json');
  }

  async start(): Promise<void> {
    await this.enroll();
    this.spawn();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Writes the agent config and key, creating the local node or re-keying it when the key is gone. */
  private async enroll(): Promise<void> {
    const dir = path.dirname(this.configPath);
    const keyPath = path.join(dir, 'node.key');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let node = this.localNode();
    if (!node || !fs.existsSync(keyPath)) {
      const keys = generateNodeKeypair();
      if (node) {
        await this.registry.replaceKey(node.id, keys.publicKeyPem);
      } else {
        node = await this.registry.create({ name: this.freeName(), publicKeyPem: keys.publicKeyPem, isLocal: true, labels: { role: 'server' } });
        this.log.info({ nodeId: node.id, name: node.name }, 'enrolled this machine as a node');
      }
      fs.writeFileSync(keyPath, keys.privateKeyPem, { mode: 0o600 });
    }
    const { tlsCertSha256, tlsCaFile } = this.options;
    const config = {
      server_url: this.options.serverUrl, node_id: node.id, key_path: keyPath, metrics_interval_s: this.options.metricsIntervalS, state_dir: path.join(dir, 'state'),
      ...(tlsCertSha256 ? { tls_cert_sha256: tlsCertSha256 } : {}), ...(tlsCaFile ? { tls_ca_file: tlsCaFile } : {}),
      ...(this.options.terminalShell ? { terminal_shell: this.options.terminalShell } : {}),
    };
    fs.writeFileSync(this.configPath, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  }

  /**
   * The node this data dir's agent runs as: the one its agent.json names; else, alone on the
   * database, any local node (a data dir that lost its agent files); none on a shared database.
   */
  private localNode(): NodeView | undefined {
    const usable = (n: NodeView | undefined) => (n?.is_local && n.status !== 'revoked' ? n : undefined);
    const own = usable(this.registry.view(storedNodeId(this.configPath) ?? ''));
    if (own || this.options.sharedAsReplica) return own;
    return this.registry.list().find((n) => usable(n));
  }

  private freeName(): string {
    const host = this.options.sharedAsReplica ?? os.hostname();
    const base = (host.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'server').slice(0, 50);
    const taken = new Set(this.registry.list().map((n) => n.name));
    for (let i = 0; ; i++) {
      const name = i === 0 ? base : `${base}-${i + 1}`;
      if (!taken.has(name)) return name;
    }
  }

  private spawn(): void {
    const agentPath = this.options.agentPath ?? defaultAgentPath();
    const python = fs.existsSync(this.options.python) ? this.options.python : 'python3';
    const child = spawn(python, [agentPath, '--config', this.configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    const started = Date.now();
    readline.createInterface({ input: child.stderr! }).on('line', (line) => this.log.info(line));
    child.on('error', (err) => this.log.error({ err }, 'local agent could not start'));
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      // A child that ran for a while earns a quick restart; one that dies at once backs off.
      this.restartDelayMs = Date.now() - started > 60_000 ? 1000 : Math.min(this.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
      this.log.warn({ code, signal, restartInMs: this.restartDelayMs }, 'local agent exited');
      this.restartTimer = setTimeout(() => this.spawn(), this.restartDelayMs);
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}

/** The node id in an agent.json written before, if any. */
function storedNodeId(configPath: string): string | undefined {
  try {
    const id = (JSON.parse(fs.readFileSync(configPath, 'utf8')) as { node_id?: unknown }).node_id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
