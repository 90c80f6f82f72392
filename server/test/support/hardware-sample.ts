import fs from 'node:fs';
import type { HardwareState, HostFacts } from '@dvic/protocol';

const vectors = JSON.parse(fs.readFileSync(new URL('../../../protocol/vectors/messages/hardware.state.json', import.meta.url), 'utf8')) as {
  tests: { valid: boolean; data: { data: HardwareState } }[];
};

/** A real hardware.state sample (the protocol's first valid vector). */
export const hardwareSample: HardwareState = vectors.tests.find((t) => t.valid)!.data.data;

export const hostSample: HostFacts = hardwareSample.host;
