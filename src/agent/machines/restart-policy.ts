/**
 * Pure decisions about a machine's lifecycle: what to do after its workload exits by itself
 * (restart policy, auto_destroy) and which signal and timeout a stop uses.
 *
 * Rules (Fly's docs, machines-api.md §7):
 * - `auto_destroy: true` → destroy after the exit (it wins over any restart policy, as Fly requires
 *   policy `no` with it).
 * - policy `no` → stay `stopped`.
 * - policy `always` → restart after every exit, without limit.
 * - policy `on-failure` (the default when no policy is set) → restart after a non-zero exit (or an
 *   OOM kill) while fewer than `max_retries` (default 10) restarts happened since the last user
 *   action; then stay `stopped`. Fly counts within a 5-minute window; we count since the last
 *   user start/stop/update instead, which is simpler and never restarts more often.
 * - Restarts wait a backoff: `initialMs · 2^restarts`, capped at `maxMs` (100 ms doubling to 5 s).
 * @module
 */
import type { MachineConfig } from '../../api-types/machine.js';
import { parseDuration } from '../../core/durations.js';
import { type SignalName, SIGNALS, signalNumber } from '../../core/signals.js';
import type { ExitInfo } from '../drivers/driver.js';

export const DEFAULT_MAX_RETRIES = 10;
export const DEFAULT_STOP_TIMEOUT_MS = 5000;
export const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 5000 };

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export type ExitDecision =
  | { action: 'stop'; reason: string }
  | { action: 'restart'; delayMs: number; attempt: number }
  | { action: 'destroy' };

export function decideAfterExit(config: MachineConfig, exit: ExitInfo, restartCount: number, backoff: Backoff = DEFAULT_BACKOFF): ExitDecision {
  if (config.auto_destroy) return { action: 'destroy' };
  const policy = config.restart?.policy ?? 'on-failure';
  const restart = (): ExitDecision => ({
    action: 'restart',
    delayMs: Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(restartCount, 30)),
    attempt: restartCount + 1,
  });
  if (policy === 'no') return { action: 'stop', reason: 'restart policy is "no"' };
  if (policy === 'always') return restart();
  const failed = exit.exit_code !== 0 || exit.oom_killed || exit.signal !== 0;
  if (!failed) return { action: 'stop', reason: 'exited successfully' };
  const maxRetries = config.restart?.max_retries ?? DEFAULT_MAX_RETRIES;
  if (restartCount >= maxRetries) return { action: 'stop', reason: `gave up after ${restartCount} restarts (max_retries ${maxRetries})` };
  return restart();
}

/** Signal and timeout for a stop: the request's, else the machine's stop_config, else SIGINT and 5 s. */
export function stopOptions(config: MachineConfig, request: { signal?: number | undefined; timeout_ms?: number | undefined } = {}): { signal: number; timeoutMs: number } {
  const configured = config.stop_config?.signal as SignalName | undefined;
  const signal = request.signal ?? (configured ? signalNumber(configured) : SIGNALS.SIGINT);
  const timeoutMs = request.timeout_ms ?? parseDuration(config.stop_config?.timeout) ?? DEFAULT_STOP_TIMEOUT_MS;
  return { signal, timeoutMs };
}

/** The `exit_event` of a machine event, in fly-go's `ExitEvent` field names. */
export function exitEvent(exit: ExitInfo, restarting: boolean): Record<string, unknown> {
  return {
    exit_code: exit.exit_code,
    guest_exit_code: exit.exit_code,
    signal: exit.signal,
    guest_signal: exit.signal,
    oom_killed: exit.oom_killed,
    requested_stop: exit.requested_stop,
    restarting,
    exited_at: new Date(exit.exited_at).toISOString(),
  };
}
