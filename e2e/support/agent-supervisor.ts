// The real agent installed the way install.sh lays it out (<root>/dvic_agent.py, <root>/guard.py),
// run the way dvic-agent.service runs it: the guard first (ExecStartPre), then the agent, started
// again after any exit (Restart=always) a moment later. Bounded: it gives up after maxStarts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_PATH, Proc, PYTHON, sleep } from './processes.js';

export const AGENT_SOURCE = fs.readFileSync(AGENT_PATH, 'utf8');

/** The agent file with another AGENT_VERSION, optionally changed further (a broken version). */
export function agentVersion(version: string, change: (source: string) => string = (s) => s): string {
  const source = AGENT_SOURCE.replace(/^AGENT_VERSION = ".*"$/m, `AGENT_VERSION = "${version}"`);
  if (source === AGENT_SOURCE) throw new Error('no AGENT_VERSION line in the agent');
  return change(source);
}

/** Lays out an install root as install.sh does: the agent file and the guard (a copy of it). */
export function installAgent(root: string, source = AGENT_SOURCE): void {
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(root, 'dvic_agent.py'), source, { mode: 0o644 });
  fs.writeFileSync(path.join(root, 'guard.py'), source, { mode: 0o644 });
}

const supervisors = new Set<AgentSupervisor>();

export class AgentSupervisor {
  output = '';
  readonly exitCodes: Array<number | null> = [];
  private current: Proc | undefined;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(readonly root: string, readonly configPath: string, private readonly maxStarts = 20, private readonly restartMs = 300) {
    supervisors.add(this);
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    for (let start = 0; start < this.maxStarts && !this.stopped; start++) {
      await this.run([path.join(this.root, 'guard.py'), '--guard', this.root]);
      if (this.stopped) break;
      this.exitCodes.push(await this.run([path.join(this.root, 'dvic_agent.py'), '--config', this.configPath]));
      await sleep(this.restartMs);
    }
  }

  private async run(args: string[]): Promise<number | null> {
    const proc = new Proc(spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.current = proc;
    proc.child.stdout!.on('data', (d) => { this.output += d; });
    proc.child.stderr!.on('data', (d) => { this.output += d; });
    return (await proc.exited).code;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    supervisors.delete(this);
    await this.current?.kill('SIGKILL');
    await this.done;
  }
}

export async function stopSupervisors(): Promise<void> {
  await Promise.all([...supervisors].map((s) => s.stop()));
}
