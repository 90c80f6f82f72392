#!/usr/bin/env node
// The `dvic` command. A committed launcher rather than the built file itself: npm links a
// package's commands when it installs it, which in this repository is before the first build.
import('../dist/bin.js').catch((err) => {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/bin.js')) throw err;
  console.error('dvic: not built yet: run `npm run build` in the repository first');
  process.exit(1);
});
