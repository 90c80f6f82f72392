// A protocol-level stand-in for the Python agent, used by server tests and the load benchmark:
// real WebSocket, real challenge/hello/welcome handshake, real Ed25519 signatures.
import crypto from 'node:crypto';
import os from 'node:os';
import WebSocket from 'ws';

export function authMessage(nonce, nodeId) {
  return `dvic-agent-auth:v1:${nonce}:${nodeId}`;
}

export function sampleHardware(overrides = {}) {
  return {
    ts: Date.now(), interval_s: 5,
    host: sampleHost(),
    uptime_s: os.uptime(),
    cpu: { total_pct: 12.5, per_core_pct: [10, 15] },
    load: { load1: 0.1, load5: 0.2, load15: 0.3 },
    memory: { total_bytes: 8e9, available_bytes: 6e9, used_bytes: 2e9, swap_total_bytes: 0, swap_used_bytes: 0 },
    filesystems: [{ mount: '/', device: '/dev/sda1', fstype: 'ext4', size_bytes: 1e11, used_bytes: 4e10, avail_bytes: 6e10 }],
    temperatures: [{ sensor: 'thermal_zone0', source: 'thermal', chip: 'cpu-thermal', celsius: 47.5 }],
    processes: 200,
    network: [{ iface: 'eth0', rx_bytes: 1000, tx_bytes: 2000, rx_bytes_per_s: 10, tx_bytes_per_s: 20 }],
    ...overrides,
  };
}

export function sampleHost() {
  return { hostname: 'sim', os: 'Simulated Linux', kernel: '6.1.0', arch: 'x86_64', boot_id: '00000000-0000-4000-8000-000000000000', agent_version: 'sim-0.1.0' };
}

/**
 * Connects as a node. Resolves once the server welcomed it; rejects with {code, reason} when the
 * server closes the socket first. Options let tests misbehave on purpose.
 *
 * @param {{ url: string, nodeId: string, privateKeyPem: string,
 *           sign?: (message: string) => string, nonce?: (serverNonce: string) => string,
 *           onChallenge?: (ws: WebSocket, challenge: object) => boolean, capabilities?: string[], hello?: object }} options
 */
export function connectAgent(options) {
  const ws = new WebSocket(options.url, { perMessageDeflate: false });
  const messages = [];
  const waiters = [];
  let closed = null;
  const agent = {
    ws, messages, binary: [],
    /** Sends a JSON message. */
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    sendHardware: (overrides) => agent.send({ type: 'hardware.state', data: sampleHardware(overrides) }),
    /** Resolves with the next received message matching the predicate (or already received). */
    next: (predicate = () => true, timeoutMs = 5000) => new Promise((resolve, reject) => {
      const index = messages.findIndex(predicate);
      if (index >= 0) return resolve(messages.splice(index, 1)[0]);
      const timer = setTimeout(() => reject(new Error('timed out waiting for a message')), timeoutMs);
      waiters.push({ predicate, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    }),
    /** Resolves with the next received message of this type. */
    nextOf: (type, timeoutMs) => agent.next((m) => m.type === type, timeoutMs),
    closed: new Promise((resolve) => ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; resolve(closed); })),
    close: () => ws.close(1000, 'bye'),
  };
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        agent.binary.push(Buffer.from(data));
        return;
      }
      const message = JSON.parse(data.toString());
      if (message.type === 'challenge') {
        if (options.onChallenge && options.onChallenge(ws, message) === false) return;
        const nonce = options.nonce ? options.nonce(message.data.nonce) : message.data.nonce;
        const signed = authMessage(nonce, options.nodeId);
        const signature = options.sign ? options.sign(signed) : crypto.sign(null, Buffer.from(signed), options.privateKeyPem).toString('base64');
        agent.hello = { type: 'hello', data: { node_id: options.nodeId, nonce, signature, protocol: 1, agent_version: 'sim-0.1.0', capabilities: options.capabilities ?? ['hardware'], host: sampleHost(), ...options.hello } };
        agent.send(agent.hello);
        return;
      }
      if (message.type === 'welcome') {
        agent.welcome = message;
        return resolve(agent);
      }
      const waiter = waiters.findIndex((w) => w.predicate(message));
      if (waiter >= 0) waiters.splice(waiter, 1)[0].resolve(message);
      else messages.push(message);
    });
    agent.closed.then((c) => reject(Object.assign(new Error(`closed ${c.code} ${c.reason}`), c)));
  });
}
