/**
 * Runs the health checks of every started machine of this host and records status changes.
 *
 * It follows the event hub: a machine that becomes `started` gets one runner per declared check
 * (`check-specs.ts`); any other state ends them (stop, suspend, exit, restart, update, destroy).
 * The database resets the statuses in the same change that moves the state (all `warning` on
 * start, none otherwise), so a run never inherits the previous run's `passing`. A runner writes only
 * when a status changes (`AgentDb.setChecks`, a numbered change whose event carries `checks`), never
 * on every interval. A result that arrives after its run ended is dropped.
 *
 * On agent start it picks up machines that are already started (re-attached by recovery): their
 * stored statuses stand and the first run happens at once (no grace period).
 * @module
 */
import type { AgentEvent } from '../../api-types/agent.js';
import type { CheckStatus } from '../../api-types/machine.js';
import type { Logger } from '../../core/logger.js';
import type { EventHub } from '../machines/event-hub.js';
import type { AgentDb, MachineRow } from '../store/agent-db.js';
import { type CheckSpec, checkSpecs, nextDelay, STARTUP_RETRY_MS, withResult } from './check-specs.js';
import { type Probe, runProbe } from './probes.js';

export interface CheckOptions {
  /** Where probes connect for a machine; default its private IP. Tests point it at loopback. */
  resolveAddress?: (machine: { id: string; private_ip: string }) => string;
  /** Retry period until a check first passes after a start; default 1 s. */
  startupRetryMs?: number;
  /** The probe; default TCP/HTTP (`probes.ts`). */
  probe?: Probe;
}

export interface CheckManagerOptions extends CheckOptions {
  db: AgentDb;
  hub: EventHub;
  logger: Logger;
}

export class CheckManager {
  private readonly machines = new Map<string, MachineChecks>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: CheckManagerOptions) {}

  /** Starts following machine changes and checks the machines already started. */
  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.options.hub.subscribe((event) => this.onEvent(event));
    for (const row of this.options.db.listMachines()) if (row.state === 'started') this.watch(row, true);
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const checks of this.machines.values()) checks.stop();
    this.machines.clear();
  }

  /** Whether checks of machine `id` are running (tests, diagnostics). */
  running(id: string): boolean {
    return this.machines.has(id);
  }

  private onEvent(event: AgentEvent): void {
    const current = this.machines.get(event.machine_id);
    if (event.state !== 'started') {
      if (current) this.unwatch(event.machine_id);
      return;
    }
    if (current && current.version === event.version) return;
    if (current) this.unwatch(event.machine_id);
    const row = this.options.db.getMachine(event.machine_id);
    if (row && row.state === 'started') this.watch(row, false);
  }

  private watch(row: MachineRow, resumed: boolean): void {
    const specs = checkSpecs(row.spec.config);
    if (specs.length === 0) return;
    const host = this.options.resolveAddress?.({ id: row.id, private_ip: row.private_ip }) ?? row.private_ip;
    const checks: MachineChecks = new MachineChecks(row, specs, host, resumed, this.options, () => {
      if (this.machines.get(row.id) === checks) this.machines.delete(row.id);
    });
    this.machines.set(row.id, checks);
    checks.start();
  }

  private unwatch(id: string): void {
    this.machines.get(id)?.stop();
    this.machines.delete(id);
  }
}

/** The runners of one run of one machine. */
class MachineChecks {
  readonly version: string;
  private statuses: CheckStatus[];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inflight = new Set<AbortController>();
  private stopped = false;

  constructor(
    private readonly row: MachineRow,
    private readonly specs: CheckSpec[],
    private readonly host: string,
    private readonly resumed: boolean,
    private readonly options: CheckManagerOptions,
    private readonly onEnded: () => void,
  ) {
    this.version = row.version;
    this.statuses = row.checks;
  }

  start(): void {
    for (const spec of this.specs) {
      const passing = this.statuses.find((s) => s.name === spec.name)?.status === 'passing';
      this.schedule(spec, { runs: 0, passedOnce: this.resumed && passing, resumed: this.resumed });
    }
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const controller of this.inflight) controller.abort();
    this.inflight.clear();
  }

  private schedule(spec: CheckSpec, state: { runs: number; passedOnce: boolean; resumed: boolean }): void {
    if (this.stopped) return;
    const delay = nextDelay(spec, state, this.options.startupRetryMs ?? STARTUP_RETRY_MS);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.run(spec, state);
    }, delay);
    this.timers.add(timer);
  }

  private async run(spec: CheckSpec, state: { runs: number; passedOnce: boolean; resumed: boolean }): Promise<void> {
    if (this.stopped) return;
    const controller = new AbortController();
    this.inflight.add(controller);
    const result = await (this.options.probe ?? runProbe)(spec, this.host, controller.signal);
    this.inflight.delete(controller);
    if (this.stopped) return;
    state.runs++;
    if (result.passing) state.passedOnce = true;
    const status = result.passing ? 'passing' : 'critical';
    const { list, changed } = withResult(this.statuses, spec.name, status, result.output);
    if (changed) {
      this.statuses = list;
      let change;
      try {
        change = this.options.db.setChecks(this.row.id, this.version, list);
      } catch (err) {
        this.options.logger.warn('could not record a health check status', { machine: this.row.id, check: spec.name, err: String(err) });
      }
      if (!change) {
        // The run is over (the machine moved on) or the database is gone: nothing more to check.
        this.stop();
        this.onEnded();
        return;
      }
      this.options.hub.publish(change.event);
      this.options.logger.info(`health check '${spec.name}' on port ${spec.port ?? '?'} is now ${status}`, { machine: this.row.id, output: result.output });
    }
    this.schedule(spec, state);
  }
}
