/**
 * Test helpers for the crun driver: whether this host can run it, a driver on a temp data dir with
 * the stand-in providers, and conformance specs made of busybox commands.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import type { ConformanceSpecs } from '../driver.conformance.js';
import { CrunDriver, type CrunDriverOptions } from './crun-driver.js';
import { findRuntime } from './runtime.js';
import { BusyboxImages, StandinNetwork } from './standins.js';

/** Why crun tests cannot run here, or undefined when they can. */
export function crunUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!findRuntime()) return 'needs crun or runc';
  if (!existsSync('/usr/bin/tini-static')) return 'needs tini-static';
  if (!existsSync('/bin/busybox')) return 'needs busybox-static';
  const v2 = '/sys/fs/cgroup/unified/cgroup.controllers';
  if (existsSync(v2) && readFileSync(v2, 'utf8').trim() !== '' && findRuntime()?.endsWith('crun')) {
    return 'hybrid cgroups with controllers on cgroup2: apply the hugetlb fix (hangar host setup)';
  }
  return undefined;
}

export async function tempDataDir(prefix = 'hangar-crun-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function standinDriver(dataDir: string, options: Partial<CrunDriverOptions> = {}): CrunDriver {
  return new CrunDriver({
    dataDir,
    images: new BusyboxImages(join(dataDir, 'images')),
    network: new StandinNetwork(join(dataDir, 'network')),
    ...options,
  });
}

const exec = (base: AgentMachineSpec, argv: string[]): AgentMachineSpec => ({ ...base, config: { ...base.config, init: { exec: argv } } });

export const busyboxSpecs: ConformanceSpecs = {
  longRunning: (base) => exec(base, ['sleep', '1000']),
  exitsAfter: (base, ms, code) => exec(base, ['sh', '-c', `sleep ${(ms / 1000).toFixed(3)}; exit ${code}`]),
  // tini forwards signals to the app's process group, so the app itself must ignore them.
  ignoresSignals: (base) => exec(base, ['sh', '-c', 'trap "" TERM INT HUP QUIT USR1 USR2; sleep 1000']),
  failsToStart: (base) => exec(base, ['/no/such/entrypoint']),
};
