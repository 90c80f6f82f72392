import { describe, expect, it } from 'vitest';
import { jobOf, JobRoutes, MAX_ROUTES_PER_NODE } from '../../src/cluster/job-routes.js';

const NODE = '0a1b2c3d-0000-4000-8000-000000000001';

describe('job routes of a holding replica', () => {
  it('names the job of a request and of the agent answers to it', () => {
    expect(jobOf({ type: 'exec.request', data: { command_id: 'c1' } })).toBe('exec:c1');
    expect(jobOf({ type: 'exec.result', data: { command_id: 'c1' } })).toBe('exec:c1');
    expect(jobOf({ type: 'update.fetch', data: { update_id: 'u1' } })).toBe('update:u1');
    expect(jobOf({ type: 'deploy.status', data: { deploy_id: 'd1' } })).toBe('deploy:d1');
    expect(jobOf({ type: 'terminal.open', data: { channel: 1 } })).toBeUndefined();
    expect(jobOf({ type: 'exec.request', data: { command_id: 5 } })).toBeUndefined();
  });

  it('sends a job answers to the replica that started it, until it ends or goes quiet', () => {
    const routes = new JobRoutes();
    expect(routes.remember(NODE, 'exec:c1', 'replica-b', 1000)).toBe(true);
    routes.remember(NODE, 'update:u1', 'replica-c', 1000);
    expect(routes.originOf(NODE, 'exec:c1', 2000)).toBe('replica-b');
    expect(routes.originOf(NODE, 'update:u1', 1000)).toBe('replica-c');
    expect(routes.originOf(NODE, 'exec:other', 1000)).toBeUndefined();
    routes.forget(NODE, 'exec:c1');
    expect(routes.originOf(NODE, 'exec:c1')).toBeUndefined();
    routes.remember(NODE, 'deploy:d1', 'replica-b', 1000);
    routes.originOf(NODE, 'deploy:d1', 9000);
    routes.sweep(10_000, 5000);
    expect(routes.originOf(NODE, 'deploy:d1')).toBe('replica-b');
    expect(routes.originOf(NODE, 'update:u1')).toBeUndefined(); // quiet since 1000
  });

  it('refuses more routes than a node may hold', () => {
    const routes = new JobRoutes();
    for (let i = 0; i < MAX_ROUTES_PER_NODE; i++) routes.remember(NODE, `exec:${i}`, 'b');
    expect(routes.remember(NODE, 'exec:one-more', 'b')).toBe(false);
    expect(routes.remember(NODE, 'exec:1', 'c')).toBe(true); // a known job is refreshed
  });
});
