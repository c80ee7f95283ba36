/**
 * Image garbage collection for the agent: which images machines still need, a periodic run, and
 * the explicit one behind `POST /agent/v1/images/gc`. The rule (docs/images.md, "GC"): an image
 * stays while any machine the agent knows that is not destroyed uses it, by digest (the driver
 * reports what each machine it holds runs) or by name (the image of every machine's current spec
 * and of every pending create/update, so a machine being created keeps its image before the driver
 * holds it). Imported names stay `graceMs` after their import (periodic runs; default 1 h) so an
 * import followed by `machine run` is never raced; the explicit run uses no grace unless asked.
 * @module
 */
import type { Logger } from '../../core/logger.js';
import type { Driver } from '../drivers/driver.js';
import type { AgentDb } from '../store/agent-db.js';

export interface ImageGcOptions {
  db: AgentDb;
  driver: Driver;
  logger: Logger;
  /** Between periodic runs; default 1 h; 0 turns periodic runs off. */
  intervalMs?: number;
  /** Grace of imported names in periodic runs; default 1 h. */
  graceMs?: number;
}

export const DEFAULT_IMAGE_GC_INTERVAL_MS = 3_600_000;
export const DEFAULT_IMAGE_GRACE_MS = 3_600_000;

export class ImageGc {
  private readonly intervalMs: number;
  readonly graceMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<{ removed: string[] }> = Promise.resolve({ removed: [] });

  constructor(private readonly options: ImageGcOptions) {
    this.intervalMs = options.intervalMs ?? DEFAULT_IMAGE_GC_INTERVAL_MS;
    this.graceMs = options.graceMs ?? DEFAULT_IMAGE_GRACE_MS;
  }

  /** Image names of every machine that is not destroyed, including specs of pending operations. */
  namesInUse(): string[] {
    const names = new Set<string>();
    for (const row of this.options.db.listMachines()) {
      if (row.state !== 'destroyed') names.add(row.spec.config.image);
    }
    for (const op of this.options.db.pendingOps()) {
      const spec = op.args.spec as { config?: { image?: unknown } } | undefined;
      if (typeof spec?.config?.image === 'string') names.add(spec.config.image);
    }
    return [...names];
  }

  /** One run; runs never overlap (a second caller waits for the first, then runs its own). */
  run(graceMs = this.graceMs): Promise<{ removed: string[] }> {
    const driver = this.options.driver;
    const next = this.running.catch(() => undefined).then(async () => {
      if (!driver.gcImages) return { removed: [] };
      return driver.gcImages({ keepNames: this.namesInUse(), graceMs });
    });
    this.running = next;
    return next;
  }

  start(): void {
    if (this.intervalMs <= 0 || !this.options.driver.gcImages || this.timer) return;
    this.timer = setInterval(() => {
      this.run().catch((err: unknown) => this.options.logger.warn('periodic image gc failed', { err: String(err) }));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running.catch(() => undefined);
  }
}
