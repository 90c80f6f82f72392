import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import type { EnrollmentView } from '@dvic/protocol';
import type { NodeLink } from '../hub/node-link.js';
import type { NodeRegistry } from '../live/node-registry.js';
import type { EnrollmentsRepository } from '../repositories/enrollments-repository.js';
import { agentConfigServer, type ServerIdentity } from './enrollment.js';
import { generateNodeKeypair } from './node-keys.js';
import { SshFailure, SshSession } from './ssh-session.js';
import type { TunnelService } from './tunnel-service.js';

export type StepName = EnrollmentView['steps'][number]['name'];
export const STEPS: StepName[] = ['reach_source', 'open_tunnel', 'ssh_connect', 'authenticate', 'check_target', 'upload', 'install', 'start_service', 'first_hello'];

/** What a caller asks for; the secret (password or private key) lives in memory only, for this enrollment. */
export interface EnrollmentRequest {
  name: string;
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  /** The source node's id, or 'server'. */
  via: string;
  labels: Record<string, string>;
  acceptHostKey?: string;
}

export interface EnrollmentFiles {
  agentPath: string;
  installScriptPath: string;
}

const FIRST_HELLO_TIMEOUT_MS = 60_000;
/** A host key shown and not confirmed within this long: the enrollment forgets its password. */
const HOST_KEY_WAIT_MS = 15 * 60_000;

/** A step failed: its message, and what the target printed. */
class StepFailure extends Error {
  constructor(message: string, readonly output: string | null = null) {
    super(message);
  }
}

interface Secret {
  request: EnrollmentRequest;
  server: ServerIdentity;
  /** A host key the user confirmed (accept) for this enrollment. */
  confirmedHostKey?: string;
  expiry?: NodeJS.Timeout;
}

/**
 * Adds a machine over SSH: through a source node's tunnel (or directly), host key checked before
 * anything is sent, the agent installed with install.sh as root (sudo -S with the password on
 * stdin), then waits for its first hello. Every step is timed and published (`updated`); a failure
 * names its step and what the target printed, with the password and key removed.
 */
export class EnrollmentService extends EventEmitter<{ updated: [EnrollmentView] }> {
  private readonly secrets = new Map<string, Secret>();
  /**
   * The host key a person confirmed for an enrollment (accept, or a matching accept_host_key),
   * the only one a retry may trust: the fingerprint in the view is merely the one last shown.
   * In memory: after a restart a retry shows the key again.
   */
  private readonly confirmedKeys = new Map<string, string>();
  /** The last change of each enrollment still being written: the next one starts from it (read, change, store in order). */
  private readonly changing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly repository: EnrollmentsRepository,
    private readonly registry: NodeRegistry,
    private readonly hub: NodeLink,
    private readonly tunnels: TunnelService,
    private readonly files: EnrollmentFiles,
    private readonly log: FastifyBaseLogger,
  ) {
    super();
  }

  /**
   * At start: enrollments left running by a previous process fail at their step, their password is
   * gone. owner: only that replica's (the leader also calls it for a replica that is gone).
   */
  async failInterrupted(owner?: string): Promise<number> {
    const views = await this.repository.unfinished(owner);
    for (const view of views) {
      const step = view.steps.find((s) => s.status === 'running' || s.status === 'pending')?.name ?? 'first_hello';
      await this.repository.save({
        ...view, state: 'failed', updated_at: Date.now(),
        error: { step, message: 'the server restarted during this enrollment: retry it (POST .../retry with the password)', output: null },
        steps: view.steps.map((s) => (s.name === step ? { ...s, status: 'failed' } : s)),
      });
    }
    return views.length;
  }

  /** The replicas that own enrollments under way. */
  unfinishedOwners(): Promise<string[]> {
    return this.repository.unfinishedOwners();
  }

  /** A node name that a new node would take from another one: not for a re-install of the node that has it. */
  async nameTaken(name: string, host: string, port: number): Promise<boolean> {
    const holder = this.registry.list().find((n) => n.name === name);
    return Boolean(holder && holder.id !== (await this.repository.knownHost(host, port))?.nodeId);
  }

  get(id: string): Promise<EnrollmentView | undefined> {
    return this.repository.get(id);
  }

  /**
   * For a run (never inside a transaction: the changes it waits for may wait for that transaction):
   * the enrollment once the changes being written are stored.
   */
  async settled(id: string): Promise<EnrollmentView | undefined> {
    await this.changing.get(id);
    return this.repository.get(id);
  }

  /** Records the enrollment and starts it; answers at once. */
  async start(request: EnrollmentRequest, server: ServerIdentity): Promise<EnrollmentView> {
    const now = Date.now();
    const view: EnrollmentView = {
      id: crypto.randomUUID(), name: request.name, host: request.host, port: request.port, username: request.username, via: request.via,
      labels: request.labels, state: 'running', node_id: null, host_key_fingerprint: null,
      steps: STEPS.map((name) => ({ name, status: 'pending', duration_ms: null })), error: null, created_at: now, updated_at: now,
    };
    await this.repository.save(view);
    this.secrets.set(view.id, { request, server });
    this.repository.afterCommit(() => {
      this.emit('updated', view);
      setImmediate(() => void this.run(view.id));
    });
    return view;
  }

  /** Confirms the host key shown (state awaiting_host_key) and continues. */
  async accept(id: string): Promise<EnrollmentView | 'not_waiting' | 'expired'> {
    const view = await this.get(id);
    if (!view || view.state !== 'awaiting_host_key') return 'not_waiting';
    const secret = this.secrets.get(id);
    if (!secret) return 'expired';
    clearTimeout(secret.expiry);
    secret.confirmedHostKey = view.host_key_fingerprint ?? undefined;
    if (view.host_key_fingerprint) this.confirmedKeys.set(id, view.host_key_fingerprint);
    const next: EnrollmentView = { ...view, state: 'running', steps: view.steps.map((s) => (s.status === 'ok' || s.status === 'skipped' ? s : { ...s, status: 'pending', duration_ms: null })), updated_at: Date.now() };
    await this.repository.save(next);
    this.repository.afterCommit(() => {
      this.emit('updated', next);
      setImmediate(() => void this.run(id));
    });
    return next;
  }

  /**
   * Runs a failed enrollment again with the password (or key) given anew. A new connection is
   * needed anyway and every step after it is quick and idempotent, so the steps run again from
   * the connection on (the failed one included), with the host key confirmed before; the node
   * keeps its id (if it was created) and gets a fresh key.
   */
  async retry(id: string, secret: Pick<EnrollmentRequest, 'password' | 'privateKey'>, server: ServerIdentity): Promise<EnrollmentView | 'not_failed'> {
    const view = await this.get(id);
    if (!view || view.state !== 'failed') return 'not_failed';
    const next: EnrollmentView = {
      ...view, state: 'running', error: null, updated_at: Date.now(),
      steps: view.steps.map((s) => (s.status === 'skipped' ? s : { ...s, status: 'pending', duration_ms: null })),
    };
    const request: EnrollmentRequest = {
      name: view.name, host: view.host, port: view.port, username: view.username, via: view.via, labels: view.labels,
      ...secret, acceptHostKey: this.confirmedKeys.get(id),
    };
    await this.repository.save(next);
    this.secrets.set(id, { request, server });
    this.repository.afterCommit(() => {
      this.emit('updated', next);
      setImmediate(() => void this.run(id));
    });
    return next;
  }

  private async run(id: string): Promise<void> {
    const secret = this.secrets.get(id);
    if (!secret) return;
    const run = new EnrollmentRun(this, id, secret);
    try {
      await run.execute();
    } catch (err) {
      const message = scrubError(err, secret.request);
      this.log.error({ err: message, enrollmentId: id }, 'enrollment failed unexpectedly');
      await this.failUnexpectedly(id, message);
    } finally {
      const view = await this.settled(id).catch(() => undefined);
      if (view?.state === 'awaiting_host_key') {
        secret.expiry = setTimeout(() => {
          this.expireHostKeyWait(id).catch((err: unknown) => this.log.error({ err, enrollmentId: id }, 'the expired host key wait could not be recorded'));
        }, HOST_KEY_WAIT_MS);
        secret.expiry.unref();
      } else {
        this.secrets.delete(id); // the password is gone with the enrollment
        if (view?.state === 'succeeded') this.confirmedKeys.delete(id);
      }
    }
  }

  /** Nobody confirmed the host key in time: the password is forgotten, so the enrollment cannot go on. */
  private async expireHostKeyWait(id: string): Promise<void> {
    this.secrets.delete(id);
    if ((await this.settled(id))?.state !== 'awaiting_host_key') return;
    await this.update(id, (v) => ({
      ...v, state: 'failed',
      error: { step: 'ssh_connect', message: `the host key was not confirmed within ${HOST_KEY_WAIT_MS / 60_000} min: retry it (POST .../retry with the password) and confirm the key`, output: null },
      steps: v.steps.map((s) => (s.name === 'ssh_connect' ? { ...s, status: 'failed' } : s)),
    }));
  }

  /** A host key the user confirmed for this enrollment (accept, or accept_host_key that matched). */
  confirmHostKey(id: string, fingerprint: string): void {
    this.confirmedKeys.set(id, fingerprint);
  }

  /** A run that broke outside its steps (a store failure): failed at the step it was in, not left running. */
  private async failUnexpectedly(id: string, message: string): Promise<void> {
    try {
      await this.update(id, (v) => {
        const step = v.steps.find((s) => s.status === 'running')?.name ?? v.steps.find((s) => s.status === 'pending')?.name ?? 'first_hello';
        return { ...v, state: 'failed', error: { step, message: `the server failed: ${message}`, output: null }, steps: v.steps.map((s) => (s.name === step ? { ...s, status: 'failed' } : s)) };
      });
    } catch (err) {
      this.log.error({ err, enrollmentId: id }, 'the failed enrollment could not be recorded');
    }
  }

  /** For a run: change the view, store it and publish it; changes of one enrollment apply in the order asked. */
  update(id: string, change: (view: EnrollmentView) => EnrollmentView): Promise<EnrollmentView> {
    const changed = (this.changing.get(id) ?? Promise.resolve()).then(async () => {
      const next = { ...change((await this.repository.get(id))!), updated_at: Date.now() };
      await this.repository.save(next);
      this.emit('updated', next);
      return next;
    });
    const settled = changed.catch(() => undefined);
    this.changing.set(id, settled);
    void settled.then(() => {
      if (this.changing.get(id) === settled) this.changing.delete(id);
    });
    return changed;
  }

  /** A change asked for from a synchronous callback (the SSH host key check): its failure is logged. */
  updateLater(id: string, change: (view: EnrollmentView) => EnrollmentView): void {
    this.update(id, change).catch((err: unknown) => this.log.error({ err, enrollmentId: id }, 'an enrollment step could not be recorded'));
  }

  deps() {
    return { registry: this.registry, hub: this.hub, tunnels: this.tunnels, files: this.files, repository: this.repository, log: this.log };
  }
}

/** One pass over the steps (a new one after the host key is confirmed). */
class EnrollmentRun {
  private readonly deps;
  private sock: Duplex | undefined;
  private ssh: SshSession | undefined;
  private fingerprint: string | null = null;
  private remoteDir: string | null = null;
  private nodeId: string | null = null;
  /** The re-installed node's new public key, registered when its service restarts with it. */
  private newKey: string | null = null;
  private facts: Record<string, string> = {};

  constructor(private readonly service: EnrollmentService, private readonly id: string, private readonly secret: Secret) {
    this.deps = service.deps();
  }

  private get request(): EnrollmentRequest {
    return this.secret.request;
  }

  private get asRoot(): boolean {
    return this.facts.uid === '0';
  }

  async execute(): Promise<void> {
    try {
      await this.reachTarget();
      if ((await this.service.settled(this.id))!.state === 'awaiting_host_key') return;
      await this.step('check_target', () => this.checkTarget());
      await this.step('upload', () => this.upload());
      await this.step('install', () => this.install());
      await this.step('start_service', () => this.startService());
      await this.step('first_hello', () => this.firstHello());
      await this.service.update(this.id, (v) => ({ ...v, state: 'succeeded' }));
    } catch (err) {
      if (!(err instanceof StepFailure)) throw err;
    } finally {
      if (this.remoteDir && this.ssh) await this.ssh.exec(`rm -rf ${shellQuote(this.remoteDir)}`).catch(() => undefined);
      this.ssh?.close();
      this.sock?.destroy();
    }
  }

  private async reachTarget(): Promise<void> {
    const { request } = this;
    if (request.via === 'server') {
      await this.skip('reach_source');
      await this.skip('open_tunnel');
    } else {
      await this.step('reach_source', async () => {
        if (!this.deps.hub.isConnected(request.via)) throw new StepFailure(`the source node ${this.sourceName()} is offline`);
        if (!this.deps.hub.capabilities(request.via)?.includes('tunnel')) throw new StepFailure(`the agent on ${this.sourceName()} cannot open tunnels (update it)`);
      });
      this.sock = await this.step('open_tunnel', async () => {
        try {
          return await this.deps.tunnels.open(request.via, request.host, request.port);
        } catch (err) {
          throw new StepFailure(`through ${this.sourceName()}: ${(err as Error).message}`);
        }
      });
    }
    let authStarted = 0;
    const connectStarted = Date.now();
    await this.markRunning('ssh_connect');
    const known = await this.deps.repository.knownHost(request.host, request.port);
    try {
      this.ssh = await SshSession.open(
        { host: request.host, port: request.port, username: request.username, password: request.password, privateKey: request.privateKey, sock: this.sock },
        (fingerprint) => this.decideHostKey(fingerprint, known),
        () => {
          // ssh2 calls back synchronously: the changes queue in order behind each other (service.update).
          this.service.updateLater(this.id, stepChange('ssh_connect', 'ok', Date.now() - connectStarted));
          authStarted = Date.now();
          this.service.updateLater(this.id, stepChange('authenticate', 'running', null));
        },
      );
    } catch (err) {
      if (!(err instanceof SshFailure)) throw err;
      if (err.stage === 'host_key' && err.message === AWAIT_HOST_KEY) {
        await this.finish('ssh_connect', 'pending', null);
        await this.service.update(this.id, (v) => ({ ...v, state: 'awaiting_host_key', host_key_fingerprint: this.fingerprint }));
        return;
      }
      const step: StepName = err.stage === 'authenticate' ? 'authenticate' : 'ssh_connect';
      await this.fail(step, scrub(err.message, request), null, Date.now() - (step === 'authenticate' ? authStarted : connectStarted));
    }
    await this.finish('authenticate', 'ok', Date.now() - authStarted);
  }

  /** null: go on; otherwise why not (AWAIT_HOST_KEY: ask the user). `known`: what this address had before. */
  private decideHostKey(fingerprint: string, known: { nodeId: string; fingerprint: string } | undefined): string | null {
    this.fingerprint = fingerprint;
    const { request } = this;
    if (known && known.fingerprint !== fingerprint) {
      return `the host key of ${request.host}:${request.port} changed: the node was installed with ${known.fingerprint}, the target now shows ${fingerprint} (a re-imaged machine, or someone in between); remove the node to start over`;
    }
    if (request.acceptHostKey && request.acceptHostKey !== fingerprint) {
      return `the host key does not match: accept_host_key is ${request.acceptHostKey}, the target shows ${fingerprint}`;
    }
    if (known || request.acceptHostKey || this.secret.confirmedHostKey === fingerprint) {
      if (request.acceptHostKey || this.secret.confirmedHostKey === fingerprint) this.service.confirmHostKey(this.id, fingerprint);
      this.service.updateLater(this.id, (v) => ({ ...v, host_key_fingerprint: fingerprint }));
      return null;
    }
    return AWAIT_HOST_KEY;
  }

  private async checkTarget(): Promise<void> {
    const result = await this.exec(CHECK_TARGET_SCRIPT);
    for (const line of result.output.split('\n')) {
      const match = /^([a-z0-9]+)=(.*)$/.exec(line.trim());
      if (match) this.facts[match[1]!] = match[2]!;
    }
    const f = this.facts;
    if (f.os !== 'Linux') throw new StepFailure(`the target is not Linux (${f.os || 'unknown system'})`, result.output);
    const [major = 0, minor = 0] = (f.python3 ?? '').split('.').map(Number);
    if (!f.python3) throw new StepFailure('python3 is not installed on the target: install python3 (>= 3.8), e.g. apt-get install python3', result.output);
    if (major < 3 || (major === 3 && minor < 8)) throw new StepFailure(`python3 on the target is ${f.python3}: the agent needs 3.8 or newer`, result.output);
    if (f.openssl !== 'yes') throw new StepFailure('openssl is not installed on the target: install openssl, e.g. apt-get install openssl', result.output);
    if (f.systemd !== 'yes') throw new StepFailure(`systemd is not running on the target (PID 1 is ${f.pid1 || 'unknown'}): the agent runs as a systemd service`, result.output);
    if (f.uid !== '0' && f.sudo !== 'yes') throw new StepFailure(`${this.request.username} is not root and sudo is not installed on the target`, result.output);
  }

  private async upload(): Promise<void> {
    const made = await this.exec('umask 077 && mktemp -d');
    const dir = made.output.trim();
    if (made.code !== 0 || !/^\/[A-Za-z0-9._/-]+$/.test(dir)) throw new StepFailure('could not make a temporary directory on the target', made.output);
    this.remoteDir = dir;
    const config = await this.nodeConfig();
    const files: [string, string | Buffer][] = [
      ['dvic_agent.py', fs.readFileSync(this.deps.files.agentPath)],
      ['install.sh', fs.readFileSync(this.deps.files.installScriptPath)],
      ['config.json', `${JSON.stringify(config)}\n`],
    ];
    for (const [name, content] of files) {
      const written = await this.exec(`umask 077 && cat > ${shellQuote(`${dir}/${name}`)}`, content);
      if (written.code !== 0) throw new StepFailure(`could not write ${dir}/${name} on the target`, written.output);
    }
  }

  /** The node (created, or the one this address had: same id, a new key), and its agent config. */
  private async nodeConfig(): Promise<object> {
    const { request, secret, deps } = this;
    const keys = generateNodeKeypair();
    const known = await deps.repository.knownHost(request.host, request.port);
    const existing = known && deps.registry.get(known.nodeId);
    // A node installed before keeps its id; its new key counts only once the new config is in
    // place (start_service): a failed install leaves the running agent and its key alone.
    const reinstall = existing && existing.status !== 'revoked';
    const nodeId = reinstall ? existing.id : (await deps.registry.create({ name: request.name, labels: request.labels, publicKeyPem: keys.publicKeyPem })).id;
    this.newKey = reinstall ? keys.publicKeyPem : null;
    await deps.repository.rememberHost(request.host, request.port, nodeId, this.fingerprint!);
    this.nodeId = nodeId;
    await this.service.update(this.id, (v) => ({ ...v, node_id: nodeId }));
    return { ...agentConfigServer(secret.server), node_id: nodeId, private_key: keys.privateKeyPem };
  }

  private async install(): Promise<void> {
    const dir = this.remoteDir!;
    const script = `sh ${shellQuote(`${dir}/install.sh`)} --config ${shellQuote(`${dir}/config.json`)} --agent ${shellQuote(`${dir}/dvic_agent.py`)} --no-start`;
    await this.asAdmin(script, 'the install script');
  }

  private async startService(): Promise<void> {
    if (this.newKey) await this.deps.registry.replaceKey(this.nodeId!, this.newKey);
    await this.asAdmin("sh -c 'systemctl enable dvic-agent.service && systemctl restart dvic-agent.service && systemctl is-active dvic-agent.service'", 'starting dvic-agent.service');
  }

  private firstHello(): Promise<void> {
    const nodeId = this.nodeId!;
    return new Promise((resolve, reject) => {
      const onConnected = (id: string) => {
        if (id !== nodeId) return;
        clearTimeout(timer);
        this.deps.hub.off('connected', onConnected);
        resolve();
      };
      const timer = setTimeout(() => {
        this.deps.hub.off('connected', onConnected);
        reject(new StepFailure(`the agent did not connect within ${FIRST_HELLO_TIMEOUT_MS / 1000} s: can the target reach ${this.secret.server.agentUrl}? (journalctl -u dvic-agent on the target)`));
      }, FIRST_HELLO_TIMEOUT_MS);
      this.deps.hub.on('connected', onConnected);
    });
  }

  /** Runs a command as root: as is for root, else through sudo (see asRootCommand). */
  private async asAdmin(command: string, what: string): Promise<void> {
    const { request } = this;
    const viaSudo = !this.asRoot;
    const run = viaSudo ? sudoCommand(command, request.password) : { command };
    const result = await this.exec(run.command, run.stdin);
    if (result.code === 0) return;
    const sudoRefused = viaSudo && /incorrect password|try again|no password was provided|password is required|not in the sudoers|may not run sudo/i.test(result.output);
    const message = !sudoRefused
      ? `${what} failed (exit ${result.code ?? 'signal'})`
      : request.password
        ? `sudo refused ${request.username}: wrong sudo password, or not allowed to use sudo`
        : `sudo refused ${request.username} without a password: allow passwordless sudo for ${request.username}, or give the password too`;
    throw new StepFailure(message, result.output);
  }

  private async exec(command: string, stdin?: string | Buffer): Promise<{ code: number | null; output: string }> {
    try {
      const result = await this.ssh!.exec(command, stdin);
      return { code: result.code, output: scrub(result.output, this.request) };
    } catch (err) {
      throw new StepFailure(scrub(`the command on the target failed: ${(err as Error).message}`, this.request));
    }
  }

  private async step<T>(name: StepName, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    await this.markRunning(name);
    try {
      const result = await work();
      await this.finish(name, 'ok', Date.now() - started);
      return result;
    } catch (err) {
      const output = err instanceof StepFailure ? err.output : null;
      return await this.fail(name, scrub(err instanceof Error ? err.message : String(err), this.request), output, Date.now() - started);
    }
  }

  private async markRunning(name: StepName): Promise<void> {
    await this.service.update(this.id, stepChange(name, 'running', null));
  }

  private async finish(name: StepName, status: 'ok' | 'skipped' | 'pending', durationMs: number | null): Promise<void> {
    await this.service.update(this.id, stepChange(name, status, durationMs));
  }

  private skip(name: StepName): Promise<void> {
    return this.finish(name, 'skipped', null);
  }

  private async fail(name: StepName, message: string, output: string | null, durationMs: number): Promise<never> {
    await this.service.update(this.id, (v) => ({
      ...v, state: 'failed', error: { step: name, message, output },
      steps: v.steps.map((s) => (s.name === name ? { ...s, status: 'failed', duration_ms: durationMs } : s)),
    }));
    throw new StepFailure(message, output);
  }

  private sourceName(): string {
    return this.deps.registry.get(this.request.via)?.name ?? this.request.via;
  }
}

/** A step's new status (and how long it took) in an enrollment's view. */
function stepChange(name: StepName, status: EnrollmentView['steps'][number]['status'], durationMs: number | null) {
  return (v: EnrollmentView): EnrollmentView => ({ ...v, steps: v.steps.map((s) => (s.name === name ? { ...s, status, duration_ms: durationMs } : s)) });
}

const AWAIT_HOST_KEY = 'awaiting host key confirmation';

/** Facts about the target as key=value lines; nothing here needs root. */
const CHECK_TARGET_SCRIPT = [
  'echo "os=$(uname -s)"', 'echo "arch=$(uname -m)"', 'echo "uid=$(id -u)"',
  'if command -v python3 >/dev/null 2>&1; then echo "python3=$(python3 -c \'import sys; print("%d.%d" % sys.version_info[:2])\' 2>/dev/null)"; else echo "python3="; fi',
  'if command -v openssl >/dev/null 2>&1; then echo openssl=yes; else echo openssl=no; fi',
  'if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi',
  'echo "pid1=$(cat /proc/1/comm 2>/dev/null)"',
  'if command -v sudo >/dev/null 2>&1; then echo sudo=yes; else echo sudo=no; fi',
].join('; ');

/**
 * A command run as root through sudo: with the password on stdin (-S, no prompt), or, with none
 * (a private key), non-interactively (-n), which works with passwordless sudo and fails at once otherwise.
 */
export function sudoCommand(command: string, password?: string): { command: string; stdin?: string } {
  return password ? { command: `sudo -S -p '' ${command}`, stdin: `${password}\n` } : { command: `sudo -n ${command}` };
}

/** Removes the password and private key (and each of their lines) from text meant for people. */
export function scrub(text: string, request: Pick<EnrollmentRequest, 'password' | 'privateKey'>): string {
  let out = text;
  for (const secret of [request.password, request.privateKey, ...(request.privateKey?.split('\n') ?? [])]) {
    if (secret && secret.trim().length >= 1) out = out.split(secret).join('[password removed]');
  }
  return out;
}

function scrubError(err: unknown, request: EnrollmentRequest): string {
  return scrub(err instanceof Error ? `${err.name}: ${err.message}` : String(err), request);
}

export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
