/**
 * The script a fake machine follows, read from its `config.metadata`. Metadata is the one place a
 * test can put free-form keys that survive the public API untouched, so the whole stack (CLI →
 * server → agent → driver) can be driven without running anything (Nomad's mock driver does the
 * same with task config). The keys are documented in `docs/fake-driver.md`.
 *
 * | key | value | effect |
 * | --- | --- | --- |
 * | `hangar_fake_run_for` | Go duration | the workload exits by itself this long after it starts |
 * | `hangar_fake_exit_code` | integer | exit code used by `run_for` (default 0) |
 * | `hangar_fake_oom` | `"true"` | the `run_for` exit reports `oom_killed` (exit code 137, SIGKILL) |
 * | `hangar_fake_start_error` | text | `start()` fails with `failed_precondition` and this message |
 * | `hangar_fake_start_delay` | Go duration | `start()` takes this long before the workload runs |
 * | `hangar_fake_ignore_signals` | `"true"` | every signal but SIGKILL is ignored (stop escalates) |
 * | `hangar_fake_trap_signals` | `"SIGUSR1,HUP"` | these signals are caught: recorded, workload keeps running |
 * @module
 */
import type { MachineConfig } from '../../../api-types/machine.js';
import { parseDuration } from '../../../core/durations.js';
import { HangarError } from '../../../core/errors.js';
import { resolveSignal, signalNumber } from '../../../core/signals.js';

export const FAKE_KEYS = {
  runFor: 'hangar_fake_run_for',
  exitCode: 'hangar_fake_exit_code',
  oom: 'hangar_fake_oom',
  startError: 'hangar_fake_start_error',
  startDelay: 'hangar_fake_start_delay',
  ignoreSignals: 'hangar_fake_ignore_signals',
  trapSignals: 'hangar_fake_trap_signals',
} as const;

export interface FakeScript {
  /** Milliseconds until the workload exits by itself; undefined = runs until stopped. */
  runForMs?: number;
  exitCode: number;
  oom: boolean;
  startError?: string;
  startDelayMs: number;
  ignoreSignals: boolean;
  /** Signal numbers the workload catches and survives. */
  trapSignals: Set<number>;
}

/**
 * Reads the script. A malformed value is refused at `create` with `invalid_argument` naming the key,
 * so a typo in a test fails loudly instead of silently running forever.
 */
export function readFakeScript(config: MachineConfig): FakeScript {
  const meta = config.metadata ?? {};
  const duration = (key: string): number | undefined => {
    const raw = meta[key];
    if (raw === undefined) return undefined;
    const ms = parseDuration(raw);
    if (ms === undefined) throw new HangarError('invalid_argument', `config.metadata.${key}: expected a duration such as "500ms" or "2s", got ${JSON.stringify(raw)}`);
    return ms;
  };
  const flag = (key: string): boolean => {
    const raw = meta[key];
    if (raw === undefined || raw === 'false') return false;
    if (raw === 'true') return true;
    throw new HangarError('invalid_argument', `config.metadata.${key}: expected "true" or "false", got ${JSON.stringify(raw)}`);
  };
  const rawExit = meta[FAKE_KEYS.exitCode];
  let exitCode = 0;
  if (rawExit !== undefined) {
    if (!/^\d+$/.test(rawExit) || Number(rawExit) > 255) {
      throw new HangarError('invalid_argument', `config.metadata.${FAKE_KEYS.exitCode}: expected an integer 0-255, got ${JSON.stringify(rawExit)}`);
    }
    exitCode = Number(rawExit);
  }
  const trapSignals = new Set<number>();
  for (const part of (meta[FAKE_KEYS.trapSignals] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const name = resolveSignal(part);
    if (!name || name === 'SIGKILL') {
      throw new HangarError('invalid_argument', `config.metadata.${FAKE_KEYS.trapSignals}: ${JSON.stringify(part)} is not a signal that can be caught`);
    }
    trapSignals.add(signalNumber(name));
  }
  const script: FakeScript = {
    exitCode,
    oom: flag(FAKE_KEYS.oom),
    startDelayMs: duration(FAKE_KEYS.startDelay) ?? 0,
    ignoreSignals: flag(FAKE_KEYS.ignoreSignals),
    trapSignals,
  };
  const runForMs = duration(FAKE_KEYS.runFor);
  if (runForMs !== undefined) script.runForMs = runForMs;
  const startError = meta[FAKE_KEYS.startError];
  if (startError !== undefined && startError !== '') script.startError = startError;
  return script;
}
