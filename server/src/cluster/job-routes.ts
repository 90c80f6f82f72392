/** A message to or from an agent, as far as routing needs it: its type and the ids in its data. */
export interface RoutedMessage {
  type: string;
  data: Record<string, unknown>;
}

/** The id field that ties an agent's answers to the request that started the work, per message family. */
const JOB_ID_FIELDS: Record<string, string> = { exec: 'command_id', update: 'update_id', deploy: 'deploy_id' };

/** Routes one node may hold for other replicas: past it, new work from them is refused. */
export const MAX_ROUTES_PER_NODE = 4096;

/** "exec:<command id>" for exec.request / exec.output..., undefined for a message of no job. */
export function jobOf(message: RoutedMessage): string | undefined {
  const family = message.type.slice(0, message.type.indexOf('.'));
  const field = JOB_ID_FIELDS[family];
  const id = field ? message.data[field] : undefined;
  return typeof id === 'string' ? `${family}:${id}` : undefined;
}

/**
 * Which replica started which job (a command, an update, a deploy) on a node this replica holds,
 * so that the agent's answers go to that replica only: never to this replica's own services
 * (its update service would answer another replica's update.fetch with "no update in progress"),
 * never to replicas that have nothing to do with it. A route lives while the job sends or
 * receives something, and is forgotten after idleMs of silence, or when the job ends (a
 * command's result); the agent reconnecting to this replica keeps them (an update restarts it).
 */
export class JobRoutes {
  private readonly routes = new Map<string, { origin: string; usedAt: number }>();
  private readonly countByNode = new Map<string, number>();

  /** Records (or refreshes) the origin of a job; false when the node has too many routes. */
  remember(nodeId: string, job: string, origin: string, now = Date.now()): boolean {
    const known = this.routes.get(routeKey(nodeId, job));
    if (known) {
      Object.assign(known, { origin, usedAt: now });
      return true;
    }
    const count = this.countByNode.get(nodeId) ?? 0;
    if (count >= MAX_ROUTES_PER_NODE) return false;
    this.routes.set(routeKey(nodeId, job), { origin, usedAt: now });
    this.countByNode.set(nodeId, count + 1);
    return true;
  }

  originOf(nodeId: string, job: string, now = Date.now()): string | undefined {
    const route = this.routes.get(routeKey(nodeId, job));
    if (route) route.usedAt = now;
    return route?.origin;
  }

  forget(nodeId: string, job: string): void {
    if (!this.routes.delete(routeKey(nodeId, job))) return;
    const count = (this.countByNode.get(nodeId) ?? 1) - 1;
    if (count > 0) this.countByNode.set(nodeId, count);
    else this.countByNode.delete(nodeId);
  }

  sweep(now: number, idleMs: number): void {
    for (const [key, route] of [...this.routes]) {
      if (now - route.usedAt > idleMs) {
        const at = key.indexOf('|');
        this.forget(key.slice(0, at), key.slice(at + 1));
      }
    }
  }

  get size(): number {
    return this.routes.size;
  }
}

const routeKey = (nodeId: string, job: string) => `${nodeId}|${job}`;
