/**
 * Bits the machine commands share: how a machine's image, size and events are shown, and the
 * flags of `run`/`create`.
 * @module
 */
import type { Machine, MachineEvent } from '../../../api-types/machine.js';
import { CONFIG_FLAGS } from '../../machine-flags.js';
import type { FlagSpecs } from '../../framework.js';

/** `repository:tag`, as flyctl's list shows it; falls back to the configured image. */
export function imageOf(machine: Machine): string {
  const ref = machine.image_ref;
  if (ref?.repository) {
    const version = ref.labels?.['fly.version'];
    return `${ref.repository}:${ref.tag || 'latest'}${version ? ` (${version})` : ''}`;
  }
  return machine.config?.image ?? machine.incomplete_config?.image ?? '';
}

export function processGroupOf(machine: Machine): string {
  const metadata = machine.config?.metadata ?? {};
  return metadata.fly_process_group ?? metadata.process_group ?? '';
}

/** `shared-cpu-1x:256MB` */
export function sizeOf(machine: Machine): string {
  const guest = machine.config?.guest;
  if (!guest) return machine.config?.size ?? '';
  const kind = guest.cpu_kind === 'performance' ? 'performance' : 'shared-cpu';
  return `${kind}-${guest.cpus ?? 1}x:${guest.memory_mb ?? 256}MB`;
}

/** `exit_code=0,oom_killed=false,requested_stop=true`, as flyctl's event table shows it. */
export function eventInfo(event: MachineEvent): string {
  const request = event.request as Record<string, unknown> | undefined;
  const exit = (request?.exit_event ?? (request?.MonitorEvent as Record<string, unknown> | undefined)?.exit_event) as Record<string, unknown> | undefined;
  if (!exit) return '';
  return ['exit_code', 'oom_killed', 'requested_stop']
    .filter((key) => exit[key] !== undefined)
    .map((key) => `${key}=${String(exit[key])}`)
    .join(',');
}

export function timestampOf(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '';
}

export const RUN_FLAGS = {
  ...CONFIG_FLAGS,
  name: { type: 'string', short: 'n', description: 'Machine name (generated if omitted)', valueName: 'NAME' },
  region: { type: 'string', short: 'r', description: 'Region to place the machine in', valueName: 'REGION' },
  rm: { type: 'boolean', description: 'Destroy the machine when it exits (auto_destroy, restart no)' },
  'skip-launch': { type: 'boolean', description: 'Create the machine without starting it' },
  detach: { type: 'boolean', short: 'd', description: 'Return immediately instead of waiting for the machine to start' },
  'wait-timeout': { type: 'string', valueName: 'DURATION', description: 'How long to wait for the machine to start', default: '5m' },
} as const satisfies FlagSpecs;
