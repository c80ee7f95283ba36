/**
 * Autostop: Fly's excess-capacity rule (`fly-toml.md` §15), as a pure decision plus the controller
 * that runs it on an interval and calls the API. Per app and region, at most one machine per pass:
 * - more than one started machine: `excess = started − (over_soft_limit + 1)`; stop one if ≥ 1;
 * - exactly one: stop it if its load is 0;
 * never below `min_machines_running` in the primary region, never a machine with traffic in flight
 * or active within the idle window, never a machine whose services say autostop "off".
 * @module
 */
import type { HangarClient } from '../client/client.js';
import type { Logger } from '../core/logger.js';

export interface AutostopMachine {
  id: string;
  app: string;
  region: string;
  /** Only started machines count; others are ignored. */
  state: string;
  autostop: 'off' | 'stop' | 'suspend';
  minRunning: number;
  load: number;
  softLimit: number;
  /** ms since the machine last had traffic in flight (or since it started). */
  idleMs: number;
}

export interface AutostopAction {
  id: string;
  app: string;
  action: 'stop' | 'suspend';
}

export interface AutostopOptions {
  /** The app's primary region (metadata/env PRIMARY_REGION, else the proxy's region). */
  primaryRegion: (app: string) => string;
  /** A machine must have been idle this long to be stopped. */
  minIdleMs: number;
}

export function decideAutostop(machines: AutostopMachine[], options: AutostopOptions): AutostopAction[] {
  const groups = new Map<string, AutostopMachine[]>();
  for (const m of machines) {
    if (m.state !== 'started') continue;
    const key = `${m.app}\u0000${m.region}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(m);
  }
  const actions: AutostopAction[] = [];
  for (const group of groups.values()) {
    const first = group[0]!;
    const started = group.length;
    const overSoft = group.filter((m) => m.load >= m.softLimit).length;
    const excess = started > 1 ? started - (overSoft + 1) : group[0]!.load === 0 ? 1 : 0;
    if (excess < 1) continue;
    const min = first.region === options.primaryRegion(first.app) ? Math.max(...group.map((m) => m.minRunning)) : 0;
    if (started - 1 < min) continue;
    // The longest idle machine goes first; ties by id so the choice is stable.
    const victim = group
      .filter((m) => m.autostop !== 'off' && m.load === 0 && m.idleMs >= options.minIdleMs)
      .sort((a, b) => b.idleMs - a.idleMs || (a.id < b.id ? -1 : 1))[0];
    if (victim) actions.push({ id: victim.id, app: victim.app, action: victim.autostop === 'suspend' ? 'suspend' : 'stop' });
  }
  return actions;
}

export interface AutostopHooks {
  /** Current view of every machine with autostop-relevant settings. */
  snapshot(): AutostopMachine[];
  /**
   * Takes the machine out of the pool if it is still idle right now (synchronously, so no request
   * can slip in between); false means traffic arrived and the stop is skipped.
   */
  drain(id: string): boolean;
  /** The stop finished (ok) or failed; the machine's pool state is updated. */
  drained(id: string, result: { ok: true; state: 'stopped' | 'suspended' } | { ok: false }): void;
  stopped(action: AutostopAction): void;
}

export class AutostopController {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly client: HangarClient,
    private readonly hooks: AutostopHooks,
    private readonly options: AutostopOptions & { intervalMs: number },
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.pass(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass: decide, then stop or suspend each chosen machine through the API. */
  async pass(): Promise<AutostopAction[]> {
    if (this.running) return [];
    this.running = true;
    try {
      const actions = decideAutostop(this.hooks.snapshot().filter((m) => !this.inFlight.has(m.id)), this.options);
      const done: AutostopAction[] = [];
      await Promise.all(
        actions.map(async (a) => {
          if (!this.hooks.drain(a.id)) return;
          this.inFlight.add(a.id);
          try {
            if (a.action === 'suspend') {
              try {
                await this.client.machines.suspend(a.app, a.id);
              } catch (err) {
                // Suspend falls back to stop when the machine cannot be suspended (Fly's rule).
                this.logger.warn('autostop: suspend failed, stopping instead', { app: a.app, machine: a.id, error: (err as Error).message });
                await this.client.machines.stop(a.app, a.id);
                a = { ...a, action: 'stop' };
              }
            } else {
              await this.client.machines.stop(a.app, a.id);
            }
            this.hooks.drained(a.id, { ok: true, state: a.action === 'suspend' ? 'suspended' : 'stopped' });
            this.hooks.stopped(a);
            this.logger.info(`autostop: ${a.action === 'suspend' ? 'suspended' : 'stopped'} idle machine`, { app: a.app, machine: a.id });
            done.push(a);
          } catch (err) {
            this.hooks.drained(a.id, { ok: false });
            this.logger.warn('autostop: could not stop machine', { app: a.app, machine: a.id, error: (err as Error).message });
          } finally {
            this.inFlight.delete(a.id);
          }
        }),
      );
      return done;
    } finally {
      this.running = false;
    }
  }
}
