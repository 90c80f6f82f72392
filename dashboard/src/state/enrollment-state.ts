import type { EnrollmentView } from '@dvic/protocol/shared';

type StepName = EnrollmentView['steps'][number]['name'];

/** What each step means to the person watching it. */
export const STEP_LABELS: Record<StepName, string> = {
  reach_source: 'Reach the source node',
  open_tunnel: 'Open a tunnel to the machine',
  ssh_connect: 'SSH connect',
  authenticate: 'Authenticate',
  check_target: 'Check the machine (Linux, python3, systemd)',
  upload: 'Upload the agent',
  install: 'Install',
  start_service: 'Start the service',
  first_hello: 'First hello from the new node',
};

/** The newer of what was fetched and what came live (live updates may arrive before the answer of the POST). */
export function newerEnrollment(current: EnrollmentView | null, incoming: EnrollmentView): EnrollmentView {
  if (!current || current.id !== incoming.id) return incoming;
  return incoming.updated_at >= current.updated_at ? incoming : current;
}

/** One line per step: its label, status and duration ("1.2 s"). */
export function stepLines(enrollment: EnrollmentView): { name: StepName; label: string; status: string; duration: string }[] {
  return enrollment.steps.map((s) => ({
    name: s.name, label: STEP_LABELS[s.name], status: s.status,
    duration: s.duration_ms === null ? '' : s.duration_ms < 1000 ? `${s.duration_ms} ms` : `${(s.duration_ms / 1000).toFixed(1)} s`,
  }));
}

/** Labels typed as "room=hall, rack=2"; null when a part is not key=value. */
export function parseLabelText(text: string): Record<string, string> | null {
  const labels: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf('=');
    if (at < 1) return null;
    labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}
