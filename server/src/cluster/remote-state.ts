import type { LiveMessage } from '@dvic/protocol';
import type { DemoCatalog } from '../live/demo-catalog.js';
import type { DemoRegistry } from '../live/demo-registry.js';
import type { DeviceRegistry } from '../live/device-registry.js';
import type { NodeRegistry } from '../live/node-registry.js';

/** The in-memory state a replica answers REST from (loaded from the database at start). */
export interface ReplicaState {
  nodes: NodeRegistry;
  demos: DemoRegistry;
  catalog: DemoCatalog;
  devices: DeviceRegistry;
}

/** What an event named that this replica does not know (made by another replica after this one loaded): a reload finds it. */
export interface UnknownSubject {
  kind: 'node' | 'device';
  id: string;
}

/**
 * Another replica's live event, applied to this replica's registries so that its REST answers
 * show it too: node status, hardware and view; demo runs and demos; devices. The other replica
 * wrote the database already, so this is memory only. Commands, logs, alerts and enrollments are
 * read from the database on every request: nothing to apply. Returns what was not found here.
 */
export function applyRemoteState(state: ReplicaState, message: LiveMessage): UnknownSubject | null {
  switch (message.type) {
    case 'node.status':
    case 'node.hardware':
    case 'node.updated':
      return state.nodes.applyRemote(message) ? null : { kind: 'node', id: message.type === 'node.updated' ? message.data.node.id : message.data.node_id };
    case 'node.demos':
      state.demos.applyRemote(message.data);
      return null;
    case 'demo.updated':
    case 'demo.removed':
      state.catalog.applyRemote(message);
      return null;
    case 'device.status':
    case 'device.updated':
    case 'device.removed':
      return state.devices.applyRemote(message) ? null : { kind: 'device', id: message.type === 'device.updated' ? message.data.device.id : message.data.device_id };
    case 'devices.seen':
      state.devices.applyRemote(message);
      return null;
    default:
      return null;
  }
}

/**
 * What another replica made after this one loaded, read from the database (the nodes' keys and
 * the devices' token hashes are in no event). True when it is known here now.
 */
export async function loadUnknown(state: ReplicaState, unknown: UnknownSubject): Promise<boolean> {
  if (unknown.kind === 'node') return (await state.nodes.find(unknown.id)) !== undefined;
  return state.devices.loadOne(unknown.id);
}
