/**
 * Runs the requirement list: `checkHost` probes each one into a report, `formatCheck` prints it,
 * and `setupHost` fixes what it can, one printed line per step: `ok` (already done, nothing run),
 * `run` (the shell equivalent of what it is doing), `skip` (optional, not available here) or
 * `FAIL`. Host access goes through injected probes and an executor, so tests run it on fakes.
 * @module
 */
import { actionDisplay, aptInstallActions, type HostAction, type HostProbes, type Level, type ProbeResult, type Requirement } from './requirements.js';

export interface CheckResult {
  id: string;
  title: string;
  level: Level;
  ok: boolean;
  detail: string;
  /** How to fix it (only when not ok). */
  fix?: string;
}

export interface CheckReport {
  /** True when every required item is ok. */
  ok: boolean;
  results: CheckResult[];
}

export function checkHost(requirements: readonly Requirement[], probes: HostProbes): CheckReport {
  const results = requirements.map((req): CheckResult => {
    let result: ProbeResult;
    try {
      result = req.probe(probes);
    } catch (err) {
      result = { ok: false, detail: `probe failed: ${err instanceof Error ? err.message : String(err)}` };
    }
    return { id: req.id, title: req.title, level: req.level, ok: result.ok, detail: result.detail, ...(result.ok ? {} : { fix: req.fix }) };
  });
  return { ok: results.every((r) => r.ok || r.level !== 'required'), results };
}

function mark(r: CheckResult): string {
  if (r.ok) return r.level === 'info' ? 'info' : 'ok';
  return r.level === 'required' ? 'FAIL' : r.level === 'optional' ? 'warn' : 'info';
}

export function formatCheck(report: CheckReport): string {
  const width = Math.max(...report.results.map((r) => r.title.length));
  const lines: string[] = [];
  for (const r of report.results) {
    lines.push(`  ${mark(r).padEnd(5)} ${r.title.padEnd(width)}  ${r.detail}`);
    if (!r.ok && r.fix && r.level !== 'info') lines.push(`  ${''.padEnd(5)} ${''.padEnd(width)}  fix: ${r.fix}`);
  }
  const required = report.results.filter((r) => r.level === 'required');
  const failed = required.filter((r) => !r.ok);
  lines.push(
    failed.length === 0
      ? `host check: all ${required.length} required checks pass`
      : `host check: ${failed.length} of ${required.length} required checks fail (${failed.map((r) => r.id).join(', ')}); \`hangar host setup\` (as root) fixes them`,
  );
  return `${lines.join('\n')}\n`;
}

/** Runs one action on the real host (or a fake in tests); throws with a readable message on failure. */
export interface HostExecutor {
  run(action: HostAction): Promise<void>;
}

export interface SetupStep {
  /** Requirement ids this step covers. */
  ids: string[];
  title: string;
  status: 'ok' | 'run' | 'skip' | 'manual';
  detail: string;
  actions: HostAction[];
  level: Level;
}

/**
 * What setup would do, from the current probes: one step per requirement except packages, which
 * become a single step (one `apt-get update` + one `apt-get install` of every missing package;
 * nothing at all when none is missing). Info items are not part of setup.
 */
export function planSetup(requirements: readonly Requirement[], probes: HostProbes): SetupStep[] {
  const steps: SetupStep[] = [];
  const apt = requirements.filter((r) => r.aptPackage !== undefined && r.level !== 'info');
  const packageStep = (): SetupStep => {
    const missing = apt.filter((r) => !r.probe(probes).ok);
    const names = (list: Requirement[]) => list.map((r) => r.aptPackage!).join(' ');
    const base = { title: 'packages', level: 'required' as const, actions: [] };
    if (missing.length === 0) return { ...base, ids: apt.map((r) => r.id), status: 'ok', detail: `installed: ${names(apt)}` };
    const ids = missing.map((r) => r.id);
    if (!probes.hasApt()) return { ...base, ids, status: 'manual', detail: `not an apt host: install ${names(missing)} with this host's package manager` };
    return { ...base, ids, status: 'run', detail: `installing ${names(missing)}`, actions: aptInstallActions(missing.map((r) => r.aptPackage!)) };
  };
  for (const req of requirements) {
    if (req.level === 'info') continue;
    if (req.aptPackage !== undefined) {
      if (req === apt[0]) steps.push(packageStep()); // all packages in one step, where the first one is listed
      continue;
    }
    const result = req.probe(probes);
    const base = { ids: [req.id], title: req.title, level: req.level };
    if (result.ok) {
      steps.push({ ...base, status: 'ok', detail: result.detail, actions: [] });
      continue;
    }
    const actions = req.plan?.(probes, result) ?? [];
    if (req.level === 'optional' && (result.available === false || actions.length === 0)) {
      steps.push({ ...base, status: 'skip', detail: `optional: ${result.detail}`, actions: [] });
    } else if (actions.length === 0) {
      steps.push({ ...base, status: 'manual', detail: `${result.detail}; fix: ${req.fix}`, actions: [] });
    } else {
      steps.push({ ...base, status: 'run', detail: result.detail, actions });
    }
  }
  return steps;
}

export interface SetupOutcome {
  ok: boolean;
  /** Actions that ran, as shell text. */
  ran: string[];
  failed: string[];
}

/**
 * Applies the plan: prints each step, runs its actions in order, then probes again and reports
 * what is still missing. A failed action doesn't stop other steps. A step that another setup
 * finished concurrently (the probe passes after its action failed) counts as done.
 */
export async function setupHost(
  requirements: readonly Requirement[],
  newProbes: () => HostProbes,
  executor: HostExecutor,
  print: (line: string) => void,
): Promise<SetupOutcome> {
  const ran: string[] = [];
  const failed: string[] = [];
  const byId = new Map(requirements.map((r) => [r.id, r]));
  for (const step of planSetup(requirements, newProbes())) {
    if (step.status !== 'run') {
      print(`  ${(step.status === 'manual' ? 'FAIL' : step.status).padEnd(5)} ${step.title}: ${step.detail}`);
      if (step.status === 'manual') failed.push(step.title);
      continue;
    }
    print(`  ${'fix'.padEnd(5)} ${step.title}: ${step.detail}`);
    let error: unknown;
    for (const action of step.actions) {
      const display = actionDisplay(action);
      print(`  ${'run'.padEnd(5)} ${display}`);
      ran.push(display);
      try {
        await executor.run(action);
      } catch (err) {
        error = err;
        break;
      }
    }
    if (error === undefined) continue;
    const message = error instanceof Error ? error.message : String(error);
    const probes = newProbes();
    const nowOk = step.ids.every((id) => byId.get(id)?.probe(probes).ok);
    if (nowOk) print(`  ${'ok'.padEnd(5)} ${step.title}: done concurrently (${message})`);
    else if (step.level === 'optional') print(`  ${'skip'.padEnd(5)} ${step.title}: optional, failed: ${message}`);
    else {
      print(`  ${'FAIL'.padEnd(5)} ${step.title}: ${message}`);
      failed.push(step.title);
    }
  }
  const report = checkHost(requirements, newProbes());
  const stillMissing = report.results.filter((r) => r.level === 'required' && !r.ok);
  for (const r of stillMissing) if (!failed.includes(r.title)) failed.push(r.title);
  print(
    stillMissing.length === 0
      ? ran.length === 0 ? 'host setup: nothing to do, the host is ready' : 'host setup: done, the host is ready'
      : `host setup: not ready: ${stillMissing.map((r) => `${r.title} (${r.detail})`).join('; ')}`,
  );
  return { ok: stillMissing.length === 0, ran, failed };
}
