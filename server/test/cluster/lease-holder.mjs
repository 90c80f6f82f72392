// One replica's leader lease in a process of its own, so that a test can kill it (SIGKILL) the way
// a replica dies. Uses the built server (npm run build). Prints "elected" / "deposed <reason>".
import { LeaderLease } from '../../dist/cluster/leader-lease.js';

const [databaseUrl, name] = process.argv.slice(2);
const lease = new LeaderLease({
  databaseUrl, name, checkMs: 200,
  onElected: () => console.log('elected'),
  onDeposed: (reason) => console.log(`deposed ${reason}`),
});
lease.start();
process.stdin.on('end', () => void lease.stop().then(() => process.exit(0)));
process.stdin.resume();
