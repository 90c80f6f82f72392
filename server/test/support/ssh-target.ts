import type net from 'node:net';
import { Server as SshServer, utils } from 'ssh2';

/** A real SSH server (ssh2's) with its own host key that refuses every login: enough to show a host key. */
export async function sshTarget(): Promise<{ port: number; close: () => void }> {
  const hostKey = utils.generateKeyPairSync('ed25519').private;
  const ssh = new SshServer({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => ctx.reject(['password']));
    client.on('error', () => undefined);
  });
  await new Promise<void>((r) => ssh.listen(0, '127.0.0.1', r));
  return { port: (ssh.address() as net.AddressInfo).port, close: () => ssh.close() };
}
