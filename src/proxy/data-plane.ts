/**
 * The proxy's extra data-plane threads, seen from the main thread. One event loop serves one core
 * at most, and the proxy spends about as much CPU per request as the kernel does, so a single loop
 * caps throughput below what the host can do (docs/proxy.md, "Threads"). Each extra thread
 * (data-plane-thread.ts) serves the plain HTTP listener beside the main thread's loop.
 *
 * The main thread stays the one owner of everything that must happen once: it follows the route
 * stream and forwards every event (with machine slots) to each thread, performs the starts threads
 * ask for, runs autostop, and sums every thread's metrics for `/metrics`. Loads, draining and
 * start flags are shared memory (machine-state.ts). A thread that dies is started again; its
 * connections are lost as with a crashed process, and its loads are cleared.
 * @module
 */
import { Worker } from 'node:worker_threads';
import type { RouteEvent } from '../api-types/watch.js';
import type { Logger } from '../core/logger.js';
import type { DataPlaneConfig, FromDataPlane, ToDataPlane } from './data-plane-messages.js';
import { MachineState, type MachineStateLayout } from './machine-state.js';
import type { MetricsSnapshot } from './metrics.js';
import type { MachinePool } from './pool.js';

/** A data-plane thread that died is started again after this. */
const RESTART_DELAY_MS = 1_000;
/** A thread must be serving within this, and answer a metrics request within METRICS_TIMEOUT_MS. */
const READY_TIMEOUT_MS = 15_000;
const METRICS_TIMEOUT_MS = 1_000;

export type ThreadConfig = Omit<DataPlaneConfig, 'threadIndex' | 'state'>;

interface Thread {
  index: number;
  worker: Worker;
  ready: boolean;
}

export class DataPlane {
  private readonly threads = new Map<number, Thread>();
  private readonly metricsWaits = new Map<number, { pending: Set<number>; parts: MetricsSnapshot[]; done(): void }>();
  private nextMetrics = 1;
  private closing = false;
  private readonly state: MachineState;

  /**
   * @param layout the shared machine state; thread 0 is the main thread, so `layout.threads − 1`
   *   data-plane threads run.
   */
  constructor(
    private readonly layout: MachineStateLayout,
    private readonly pool: MachinePool,
    private readonly config: ThreadConfig,
    private readonly logger: Logger,
  ) {
    this.state = new MachineState(layout, 0);
  }

  /** Starts every thread; resolves with the errors of those that could not start (they are not retried). */
  async start(): Promise<string[]> {
    const errors: string[] = [];
    await Promise.all(
      Array.from({ length: this.layout.threads - 1 }, (_, i) => this.spawn(i + 1).catch((err: Error) => void errors.push(`thread ${i + 1}: ${err.message}`))),
    );
    return errors;
  }

  /** Data-plane threads serving now (not counting the main thread). */
  serving(): number {
    let n = 0;
    for (const t of this.threads.values()) if (t.ready) n++;
    return n;
  }

  private spawn(index: number): Promise<void> {
    const config: DataPlaneConfig = { ...this.config, threadIndex: index, state: this.layout };
    const worker = new Worker(new URL('./data-plane-thread.js', import.meta.url), { workerData: config });
    const thread: Thread = { index, worker, ready: false };
    this.threads.set(index, thread);
    // The whole table first: events after it are forwarded as they come (messages keep their order).
    const machines = this.pool.table.apps().flatMap((app) => [...this.pool.table.app(app)]);
    const slots: Record<string, number> = {};
    for (const m of machines) {
      const slot = this.pool.slotOf(m.id);
      if (slot !== undefined) slots[m.id] = slot;
    }
    this.post(thread, { type: 'route', event: { type: 'snapshot', seq: 0, machines }, slots });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`not serving within ${READY_TIMEOUT_MS} ms`));
        void worker.terminate();
      }, READY_TIMEOUT_MS);
      worker.on('message', (m: FromDataPlane) => {
        switch (m.type) {
          case 'ready':
            clearTimeout(timer);
            thread.ready = true;
            return resolve();
          case 'failed':
            clearTimeout(timer);
            reject(new Error(m.error));
            return void worker.terminate();
          case 'start':
            return this.startFor(thread, m);
          case 'metrics':
            return this.metricsPart(index, m.snapshot, m.id);
          case 'log':
            return this.logger[m.level](m.msg, { thread: index, ...m.fields });
          case 'closed':
            return;
        }
      });
      worker.on('error', (err) => this.logger.error('proxy: data-plane thread failed', { thread: index, error: err.message }));
      worker.on('exit', (code) => {
        clearTimeout(timer);
        const wasReady = thread.ready;
        thread.ready = false;
        if (this.threads.get(index) === thread) this.threads.delete(index);
        // Whatever it had in flight ended with it.
        this.state.clearThread(index);
        for (const wait of this.metricsWaits.values()) if (wait.pending.delete(index) && wait.pending.size === 0) wait.done();
        if (this.closing || !wasReady) return reject(new Error(`exited with code ${code} before serving`));
        this.logger.error('proxy: data-plane thread exited; starting it again', { thread: index, code, in_ms: RESTART_DELAY_MS });
        setTimeout(() => {
          if (!this.closing) this.spawn(index).catch((err: Error) => this.logger.error('proxy: data-plane thread did not start again', { thread: index, error: err.message }));
        }, RESTART_DELAY_MS).unref();
      });
    });
  }

  private post(thread: Thread, m: ToDataPlane): void {
    thread.worker.postMessage(m);
  }

  private startFor(thread: Thread, m: Extract<FromDataPlane, { type: 'start' }>): void {
    this.pool.startFor(m.machine, m.internalPort, m.deadline).then(
      () => this.post(thread, { type: 'started', id: m.id }),
      (err: Error) => this.post(thread, { type: 'started', id: m.id, error: err.message }),
    );
  }

  /** Sends one route event, with the slots the main thread's pool gave its machines, to every thread. */
  forward(event: RouteEvent, slots: Record<string, number>): void {
    if (event.type === 'heartbeat') return;
    for (const t of this.threads.values()) this.post(t, { type: 'route', event, slots });
  }

  /** Every serving thread's metrics (a thread that does not answer in time is left out). */
  collectMetrics(): Promise<MetricsSnapshot[]> {
    const id = this.nextMetrics++;
    const targets = [...this.threads.values()].filter((t) => t.ready);
    if (targets.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const parts: MetricsSnapshot[] = [];
      const timer = setTimeout(() => done(), METRICS_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        this.metricsWaits.delete(id);
        resolve(parts);
      };
      this.metricsWaits.set(id, { pending: new Set(targets.map((t) => t.index)), parts, done });
      for (const t of targets) this.post(t, { type: 'metrics', id });
    });
  }

  private metricsPart(index: number, snapshot: MetricsSnapshot, id: number): void {
    const wait = this.metricsWaits.get(id);
    if (!wait || !wait.pending.delete(index)) return;
    wait.parts.push(snapshot);
    if (wait.pending.size === 0) wait.done();
  }

  /** Ends thread `index` as a crash would (it is started again after RESTART_DELAY_MS). */
  async terminate(index: number): Promise<void> {
    await this.threads.get(index)?.worker.terminate();
  }

  /** Stops every thread: open connections are closed, the listener copies too. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      [...this.threads.values()].map(async (t) => {
        const closed = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2_000);
          t.worker.on('message', (m: FromDataPlane) => {
            if (m.type === 'closed') {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        this.post(t, { type: 'close' });
        await closed;
        await t.worker.terminate();
      }),
    );
    this.threads.clear();
  }
}
