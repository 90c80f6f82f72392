import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'repo', include: ['test/**/*.test.ts'] } },
      { test: { name: 'protocol', include: ['protocol/test/**/*.test.ts'] } },
      { test: { name: 'server', include: ['server/test/**/*.test.ts'], testTimeout: 20_000 } },
      { test: { name: 'cli', include: ['cli/test/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 60_000 } },
      { test: { name: 'dashboard', include: ['dashboard/test/**/*.test.ts'] } },
      { test: { name: 'libs', include: ['libs/**/test/**/*.test.ts'] } },
      {
        test: {
          name: 'e2e', include: ['e2e/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000,
          // Real processes, real ports: a 2-core CI machine runs these files one at a time. Vitest
          // runs such a project after all the others, never beside them: `npm test`
          // (scripts/test.mjs) runs it in a second vitest process, beside the other projects.
          fileParallelism: false,
        },
      },
    ],
  },
});
