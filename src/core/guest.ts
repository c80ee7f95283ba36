/**
 * Machine sizes: Fly's presets, defaults and the per-CPU memory limits fly-go enforces. Hangar
 * allows smaller machines than Fly (128 MiB) because the hardware is yours.
 * @module
 */
import type { MachineConfig, MachineGuest } from '../api-types/machine.js';
import { HangarError } from './errors.js';

export const DEFAULT_GUEST = { cpu_kind: 'shared', cpus: 1, memory_mb: 256 } as const;

const MEMORY_PER_CPU = { shared: { min: 128, max: 2048 }, performance: { min: 1024, max: 8192 } } as const;

/** `shared-cpu-2x` → {shared, 2, 512}; `performance-4x` → {performance, 4, 8192}. */
export function guestFromPreset(size: string): MachineGuest | undefined {
  const match = /^(shared-cpu|performance)-(\d+)x$/.exec(size);
  if (!match) return undefined;
  const cpus = Number(match[2]);
  if (match[1] === 'shared-cpu' && [1, 2, 4, 6, 8].includes(cpus)) return { cpu_kind: 'shared', cpus, memory_mb: 256 * cpus };
  if (match[1] === 'performance' && [1, 2, 4, 6, 8, 10, 12, 14, 16].includes(cpus)) return { cpu_kind: 'performance', cpus, memory_mb: 2048 * cpus };
  return undefined;
}

/**
 * Resolves `size` into `guest`, fills defaults and checks memory against CPUs. Returns a new config;
 * throws `invalid_argument` naming the field and the fix.
 */
export function normalizeGuest(config: MachineConfig, root = 'config'): MachineConfig {
  let guest: MachineGuest = { ...config.guest };
  if (config.size !== undefined) {
    const preset = guestFromPreset(config.size);
    if (!preset) {
      throw new HangarError('invalid_argument', `${root}.size: unknown size ${JSON.stringify(config.size)}; use shared-cpu-{1,2,4,6,8}x or performance-{1,2,4,...,16}x`);
    }
    guest = { ...preset, ...guest };
  }
  const cpuKind = guest.cpu_kind ?? DEFAULT_GUEST.cpu_kind;
  const cpus = guest.cpus ?? DEFAULT_GUEST.cpus;
  const limits = MEMORY_PER_CPU[cpuKind];
  const memory = guest.memory_mb ?? Math.max(DEFAULT_GUEST.memory_mb, limits.min * cpus);
  const min = cpuKind === 'shared' ? limits.min : limits.min * cpus;
  const max = limits.max * cpus;
  if (memory < min || memory > max) {
    // The way out depends on the direction: too little memory is fixed by more memory or fewer CPUs.
    const fix = memory < min
      ? `set memory_mb to at least ${min}${cpuKind === 'performance' && cpus > 1 ? ', or lower guest.cpus' : ''}`
      : `set memory_mb to at most ${max}, or raise guest.cpus${cpuKind === 'shared' ? ' or use cpu_kind "performance"' : ''}`;
    throw new HangarError(
      'invalid_argument',
      `${root}.guest.memory_mb: ${memory} is out of range for ${cpus} ${cpuKind} CPU${cpus > 1 ? 's' : ''} (${min}-${max} MiB); ${fix}`,
    );
  }
  const { size: _size, ...rest } = config;
  return { ...rest, guest: { ...guest, cpu_kind: cpuKind, cpus, memory_mb: memory } };
}
