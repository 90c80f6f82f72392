import type { AlertRuleScope } from '@dvic/protocol';

/** What a scope is checked against. */
export interface ScopeTarget {
  nodeId: string | null;
  labels: Record<string, string>;
  demo: string | null;
}

/** A demo name pattern with * (any run of characters) and ? (one character). */
function globMatches(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's').test(name);
}

/** Whether a rule's scope covers the target; a demo pattern only narrows demo alerts. */
export function inScope(scope: AlertRuleScope, target: ScopeTarget): boolean {
  if (scope.node !== undefined && scope.node !== target.nodeId) return false;
  for (const [key, value] of Object.entries(scope.labels ?? {})) {
    if (target.labels[key] !== value) return false;
  }
  if (scope.demo !== undefined && target.demo !== null && !globMatches(scope.demo, target.demo)) return false;
  return true;
}
