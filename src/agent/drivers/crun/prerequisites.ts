/**
 * What the crun driver needs from the host (the subset of `hangar host check` that decides whether
 * `hangar up` can default to it): root, crun or runc, tini-static, and on hybrid cgroup hosts no
 * controller left on cgroup2 (crun refuses to run otherwise; `hangar host setup` remounts hugetlb).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { findRuntime } from './runtime.js';

export const TINI_STATIC = '/usr/bin/tini-static';

/** Problems that keep the crun driver from running here; empty when it can. */
export function crunProblems(env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('the agent must run as root');
  const runtime = findRuntime(undefined, env);
  if (!runtime) problems.push('neither crun nor runc is installed');
  if (!existsSync(TINI_STATIC)) problems.push(`${TINI_STATIC} is missing (package tini)`);
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  if (runtime?.endsWith('crun') && existsSync(unified) && readFileSync(unified, 'utf8').trim() !== '') {
    problems.push(`cgroup2 still owns controllers (${readFileSync(unified, 'utf8').trim()}) on this hybrid-cgroup host, which crun refuses`);
  }
  return problems;
}
