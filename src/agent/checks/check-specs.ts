/**
 * Health checks, the pure part: which checks a machine config declares (with Fly's names and
 * defaults), their status before the first run, and when each run happens. No I/O here; the
 * runners (`check-runner.ts`) and probes (`probes.ts`) do the rest. Semantics: docs/checks.md.
 *
 * Names: service checks are numbered over all services in config order, `servicecheck-NN-<type>-<port>`
 * (`servicecheck-00-http-8080`, `servicecheck-01-tcp-8080`, …); top-level checks keep their map key.
 * @module
 */
import type { CheckStatus, MachineConfig } from '../../api-types/machine.js';
import { parseDuration } from '../../core/durations.js';

export const DEFAULT_INTERVAL_MS = 15_000;
export const DEFAULT_TIMEOUT_MS = 2_000;
export const DEFAULT_GRACE_MS = 0;
/** Until a check first passes after a start, it is retried this often (or every interval, if shorter). */
export const STARTUP_RETRY_MS = 1_000;
/** Floors and caps applied to configured durations (a hot loop or an endless wait helps nobody). */
export const MIN_INTERVAL_MS = 100;
export const MAX_TIMEOUT_MS = 60_000;
export const MAX_GRACE_MS = 300_000;
/** Longest `output` kept. */
export const MAX_OUTPUT = 200;

/** One check, normalized. */
export interface CheckSpec {
  name: string;
  /** `service`: from `services[].checks` (always gates routing); `machine`: top-level `checks`. */
  source: 'service' | 'machine';
  /** Top-level `kind` (`informational` default); service checks are always `readiness`. */
  kind: 'informational' | 'readiness';
  type: 'tcp' | 'http';
  /** Undefined when neither the check nor (for service checks) its service names one. */
  port: number | undefined;
  intervalMs: number;
  timeoutMs: number;
  graceMs: number;
  /** HTTP only. */
  method: string;
  path: string;
  protocol: 'http' | 'https';
  tlsSkipVerify: boolean;
  tlsServerName: string | undefined;
  headers: [string, string][];
}

type RawCheck = NonNullable<MachineConfig['checks']>[string];

/** Every check a config declares: service checks first (config order), then top-level ones (key order). */
export function checkSpecs(config: MachineConfig): CheckSpec[] {
  const specs: CheckSpec[] = [];
  let index = 0;
  for (const service of config.services ?? []) {
    for (const check of service.checks ?? []) {
      const type = check.type ?? 'tcp';
      const port = check.port ?? service.internal_port;
      const name = `servicecheck-${String(index).padStart(2, '0')}-${type}-${port}`;
      specs.push(normalize(name, 'service', 'readiness', check, port));
      index++;
    }
  }
  for (const [name, check] of Object.entries(config.checks ?? {})) {
    specs.push(normalize(name, 'machine', check.kind ?? 'informational', check, check.port));
  }
  return specs;
}

function normalize(name: string, source: CheckSpec['source'], kind: CheckSpec['kind'], check: RawCheck, port: number | undefined): CheckSpec {
  const intervalMs = Math.max(MIN_INTERVAL_MS, duration(check.interval, DEFAULT_INTERVAL_MS));
  const timeoutMs = Math.min(MAX_TIMEOUT_MS, Math.max(1, duration(check.timeout, DEFAULT_TIMEOUT_MS)));
  const headers: [string, string][] = [];
  for (const header of check.headers ?? []) for (const value of header.values) headers.push([header.name, value]);
  let path = check.path || '/';
  if (!path.startsWith('/')) path = `/${path}`;
  return {
    name, source, kind,
    type: check.type ?? 'tcp',
    port,
    intervalMs,
    timeoutMs,
    graceMs: Math.min(MAX_GRACE_MS, duration(check.grace_period, DEFAULT_GRACE_MS)),
    method: (check.method || 'GET').toUpperCase(),
    path,
    protocol: check.protocol ?? 'http',
    tlsSkipVerify: check.tls_skip_verify === true,
    tlsServerName: check.tls_server_name || undefined,
    headers,
  };
}

function duration(value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  return parseDuration(value) ?? fallback;
}

/**
 * Statuses of a machine that has just started: every check `warning` ("not checked yet"), which
 * gets no traffic, so a machine is routed to only after its checks first pass.
 */
export function initialStatuses(config: MachineConfig, now = new Date()): CheckStatus[] {
  return checkSpecs(config).map((spec) => ({ name: spec.name, status: 'warning', output: waitingOutput(spec), updated_at: now.toISOString() }));
}

export function waitingOutput(spec: CheckSpec): string {
  return spec.graceMs > 0 ? `waiting for the first check (grace period ${spec.graceMs} ms)` : 'waiting for the first check';
}

/**
 * Delay before the next run of a check.
 * - first run of a fresh start: after `grace_period`; first run when the agent resumes watching a
 *   machine that was already running (agent restart): at once.
 * - later runs: every `interval`; but until the check has passed once since the start, every
 *   `min(interval, startupRetryMs)`, so a machine gets traffic soon after it is ready.
 */
export function nextDelay(spec: Pick<CheckSpec, 'intervalMs' | 'graceMs'>, state: { runs: number; passedOnce: boolean; resumed: boolean }, startupRetryMs = STARTUP_RETRY_MS): number {
  if (state.runs === 0) return state.resumed ? 0 : spec.graceMs;
  return state.passedOnce ? spec.intervalMs : Math.min(spec.intervalMs, startupRetryMs);
}

/** Replaces the status of `name` in `list` (adding it if missing); answers whether the status changed. */
export function withResult(list: CheckStatus[], name: string, status: CheckStatus['status'], output: string, now = new Date()): { list: CheckStatus[]; changed: boolean } {
  const current = list.find((c) => c.name === name);
  if (current && current.status === status) return { list, changed: false };
  const next: CheckStatus = { name, status, output: truncate(output), updated_at: now.toISOString() };
  return { list: current ? list.map((c) => (c.name === name ? next : c)) : [...list, next], changed: true };
}

export function truncate(text: string, max = MAX_OUTPUT): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= max ? oneLine : `${oneLine.slice(0, max - 1)}…`;
}
