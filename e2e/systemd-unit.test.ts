import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const UNIT = path.resolve(__dirname, '../server/dvic-server.service');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

// Like the agent's unit test: a missing systemd-analyze skips here, and fails under CI=true.
describe.skipIf(!hasAnalyze && process.env.CI !== 'true')('server systemd unit', () => {
  it('passes systemd-analyze verify without warnings, with LimitNOFILE, Restart=on-failure and the server settings', () => {
    const text = fs.readFileSync(UNIT, 'utf8');
    expect(text).toMatch(/^LimitNOFILE=\d+$/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
    for (const name of ['DVIC_DATA_DIR', 'DVIC_PORT', 'DVIC_HOST', 'DVIC_MIN_FREE_MB', 'DVIC_LOG_RETENTION_MB', 'DVIC_LOG_RETENTION_DAYS', 'DVIC_LOCAL_AGENT']) {
      expect(text).toMatch(new RegExp(`^Environment=${name}=`, 'm'));
    }
    expect(text).toContain('ExecStart=/usr/bin/node /opt/dvic-server/server/dist/main.js');
    expect(fs.existsSync(path.resolve(__dirname, '../server/src/main.ts'))).toBe(true); // built to server/dist/main.js

    // Verified where the paths exist: the checkout under a temporary /opt, this machine's node.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dvic-unit-'));
    try {
      const dist = path.join(tmp, 'opt/dvic-server/server/dist');
      fs.mkdirSync(dist, { recursive: true });
      fs.writeFileSync(path.join(dist, 'main.js'), '');
      const file = path.join(tmp, 'dvic-server.service');
      fs.writeFileSync(file, text.replaceAll('/opt/dvic-server', path.join(tmp, 'opt/dvic-server')).replaceAll('/etc/dvic', tmp).replace('/usr/bin/node', process.execPath));
      const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
      expect(result.error).toBeUndefined();
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr.split('\n').filter((line) => line.includes('dvic-server.service'))).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
