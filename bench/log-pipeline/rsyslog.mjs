// rsyslogd as a reference tailer for bench/log-pipeline: Debian's rsyslog run as a child (not a
// daemon) with a config of its own, in a directory of its own (pid file, work directory), that
// follows files with imfile and forwards every line over TCP (omfwd) to a sink this module runs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const RSYSLOGD = process.env.RSYSLOGD ?? '/usr/sbin/rsyslogd';

/** Starts rsyslogd following `glob` from the start of each new file (the end of those already there). */
export async function startRsyslog(dir, glob) {
  let lines = 0;
  const sink = net.createServer((socket) => socket.on('data', (chunk) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  }));
  await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const work = path.join(dir, 'work');
  fs.mkdirSync(work, { recursive: true });
  const config = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(config, [
    `global(workDirectory="${work}")`,
    'module(load="imfile" mode="inotify")',
    `input(type="imfile" file="${glob}" tag="demo:" freshStartTail="on" addMetadata="off")`,
    `action(type="omfwd" target="127.0.0.1" port="${sink.address().port}" protocol="tcp" queue.type="LinkedList" queue.size="100000")`,
    '',
  ].join('\n'));
  const child = spawn(RSYSLOGD, ['-n', '-f', config, '-i', path.join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (d) => { errors += d; });
  await new Promise((resolve) => setTimeout(resolve, 1000)); // imfile sets its watches
  if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${errors}`);
  return {
    pid: child.pid,
    delivered: () => lines,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      sink.close();
    },
  };
}
