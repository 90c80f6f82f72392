// One replica's leader work in a process of its own, so that a test can kill it (SIGKILL) the way a
// replica dies: the leader lease, the outbox relay sending to a webhook (a real HTTP receiver),
// and an evaluation job standing in for the alert engine (which does not run on PostgreSQL yet):
// while leading, it looks at the firing conditions in the table `firing` every 100 ms and records
// a "firing" notification for each in the outbox, under the key the engine's notifications get.
// Uses the built server (npm run build). Prints one line per event ("elected", "evaluating",
// "added <key> <new>", "delivering <key>").
// HOLD_AFTER=n: delivers n entries, then never finishes a delivery (a leader that dies before sending).
import { alertNotificationKey } from '../../dist/cluster/alert-outbox.js';
import { runAsLeader } from '../../dist/cluster/leader-jobs.js';
import { LeaderLease } from '../../dist/cluster/leader-lease.js';
import { LeaderOutbox } from '../../dist/cluster/leader-outbox.js';

const [databaseUrl, name, receiverUrl] = process.argv.slice(2);
const say = (line) => console.log(line);
const log = { info: () => {}, debug: () => {}, warn: (o, m) => say(`warn ${m} ${o?.err ?? ''}`), error: (o, m) => say(`error ${m} ${o?.err ?? ''}`) };
let delivered = 0;
const holdAfter = process.env.HOLD_AFTER === undefined ? Infinity : Number(process.env.HOLD_AFTER);

const lease = new LeaderLease({ databaseUrl, name, checkMs: 200 });
lease.on('elected', () => say('elected'));
const outbox = new LeaderOutbox(lease, {
  pollMs: 200, log,
  deliver: async (payload) => {
    const n = JSON.parse(payload);
    say(`delivering ${n.key}`);
    if (delivered++ >= holdAfter) return new Promise(() => {});
    const res = await fetch(receiverUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
    if (!res.ok) throw new Error(`receiver answered ${res.status}`);
  },
});

/** The stand-in engine: rebuilds what fires from the database when it starts, then follows it. */
function evaluation() {
  let timer;
  let running = false;
  const told = new Set();
  const look = async () => {
    const rows = await lease.asLeader(async (client) => (await client.query('SELECT key, started_at FROM firing ORDER BY key')).rows);
    for (const row of rows.filter((r) => !told.has(r.key))) {
      const rule = { id: 'rule-1', name: 'demo down' };
      const alert = { id: `alert-${row.key}`, started_at: Number(row.started_at), notified_at: null, state: 'firing' };
      const n = { kind: 'firing', alert, rule, key: row.key };
      const added = await outbox.add(alertNotificationKey(n), JSON.stringify(n));
      told.add(row.key);
      say(`added ${row.key} ${added}`);
    }
  };
  return {
    name: 'alert evaluation',
    start: () => {
      say('evaluating');
      running = true;
      const tick = () => { if (running) timer = setTimeout(() => look().catch((err) => say(`warn ${err.message}`)).finally(tick), 100); };
      tick();
    },
    stop: () => { running = false; clearTimeout(timer); say('stopped evaluating'); },
  };
}

runAsLeader(lease, [outbox.job(), evaluation()], log);
lease.start();
say('started');
process.stdin.on('end', () => void lease.stop().then(() => process.exit(0)));
process.stdin.resume();
