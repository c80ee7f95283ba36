/**
 * The proxy's live view of machines: the route table plus what only this proxy knows (load per
 * machine, starts in flight, machines being drained by autostop, recent start failures), and
 * `acquire`, which turns one request into a machine to dial: balance, queue, or autostart and hold
 * the request until the machine answers. Decisions are `balancer.decide`; this file does the I/O.
 * @module
 */
import { connect, type Socket } from 'node:net';
import type { RouteEvent, RouteMachine } from '../api-types/watch.js';
import type { HangarClient } from '../client/client.js';
import type { Logger } from '../core/logger.js';
import type { AutostopMachine } from './autostop.js';
import { decide, regionRank, type Candidate } from './balancer.js';
import { MachineState, SlotAllocator } from './machine-state.js';
import type { ProxyMetrics } from './metrics.js';
import { checksPass, httpService, machineAutostop, RouteTable, type ServiceMatch } from './route-table.js';

/** A failure to serve that becomes an HTTP answer (or a closed TCP connection). */
export class ProxyError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface Lease {
  machine: RouteMachine;
  match: ServiceMatch;
  /** The address to dial. */
  host: string;
  port: number;
  /** `host|port`: names the pool of idle connections to that address. */
  key: string;
  release(): void;
}

export interface AcquireOptions {
  /** Only this machine (`Fly-Force-Instance-Id`, `fly-replay: instance=`). */
  instance?: string;
  /** Only machines in this region (`fly-replay: region=`). */
  region?: string;
  /** Not this machine (`fly-replay: elsewhere=true`). */
  exclude?: string;
  /** Regions to prefer over the proxy's own order (`Fly-Prefer-Region`). */
  preferRegions?: string[];
}

/** How long requests may queue or wait for a start, and how many may queue. */
export interface PoolLimits {
  /** How long a request may queue when every machine is at its hard limit (default 5 s). */
  queueTimeoutMs: number;
  /** Requests that may queue per app before new ones get 503 at once (default 1000). */
  maxQueuedPerApp: number;
  /** How long a request may wait for an autostarted machine to answer (default 20 s). */
  startTimeoutMs: number;
  /** A machine whose start failed is not tried again for this long (default 10 s). */
  failedStartBackoffMs: number;
}

export interface PoolOptions extends PoolLimits {
  /** The API the owner thread starts machines through (a data-plane thread has `remoteStart` instead). */
  client?: HangarClient;
  region: string;
  /** Regions nearest first (the proxy's region first); others follow by name. */
  regionOrder: string[];
  logger: Logger;
  metrics: ProxyMetrics;
  /** Overrides the address dialled for a machine (test seam: fake-driver machines have no network). */
  resolveAddress?: (m: RouteMachine, internalPort: number) => { host: string; port: number };
  /**
   * Per-machine state shared with the proxy's other threads (machine-state.ts); default this
   * thread's own. Thread 0 owns slots, starts and autostop.
   */
  state?: MachineState;
  /**
   * Set in a data-plane thread: starts are asked of the owning thread (which calls the API once
   * for all threads), and slots arrive with route events.
   */
  remoteStart?: (m: RouteMachine, internalPort: number, deadline: number) => Promise<void>;
}

/** A balancer candidate with the machine and service it stands for. */
interface PoolCandidate extends Candidate {
  m: RouteMachine;
  match: ServiceMatch;
  slot: number;
}

/** The candidate the balancer named (it names only candidates it was given). */
function candidateOf(candidates: PoolCandidate[], id: string): PoolCandidate {
  for (const c of candidates) if (c.id === id) return c;
  throw new Error(`internal error: the balancer named machine ${id}, which was not a candidate`);
}

/** How often a queued request re-checks capacity that other threads may have freed. */
const CROSS_THREAD_POLL_MS = 5;

interface Waiter {
  wake(): void;
}

interface MachineFacts {
  /** The machine's slot in the shared state; -1 when it has none (every slot taken). */
  slot: number;
  settings: ReturnType<typeof machineAutostop>;
  matches: Map<(m: RouteMachine) => ServiceMatch | undefined, ServiceMatch | undefined>;
  addresses: Map<number, { host: string; port: number; key: string }>;
}

export class MachinePool {
  readonly table = new RouteTable();
  /** Loads, flags and times per machine slot, shared with the proxy's other threads. */
  readonly state: MachineState;
  /** Slot numbers (owner thread only; data-plane threads get them with each event). */
  private readonly allocator: SlotAllocator | undefined;
  private readonly slotIds = new Map<string, number>();
  /** Starts this thread waits for (the owner's also set the shared starting flag). */
  private readonly starts = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly queued = new Map<string, number>();

  /** force_https per app for the plain listener, valid for one route table version. */
  private readonly forceHttpsCache = new Map<string, boolean>();
  private forceHttpsVersion = -1;

  private readonly rank: (region: string) => number;
  /**
   * Per machine object, what a request needs to know of it that only changes with the object (the
   * table replaces a machine's object on every upsert, so an entry can never be stale; the map is
   * replaced when a removal or snapshot can free slots): its slot, the service a listener selects,
   * autostop settings, and the address to dial.
   */
  private perMachine = new WeakMap<RouteMachine, MachineFacts>();
  private failureLogged = false;

  constructor(readonly options: PoolOptions) {
    this.rank = regionRank(options.regionOrder);
    if (!options.client && !options.remoteStart) throw new Error('machine pool: needs a client to start machines, or remoteStart');
    this.state = options.state ?? new MachineState(MachineState.create(1));
    this.allocator = options.remoteStart ? undefined : new SlotAllocator(this.state);
  }

  private facts(m: RouteMachine): MachineFacts {
    let f = this.perMachine.get(m);
    if (!f) this.perMachine.set(m, (f = { slot: this.slotIds.get(m.id) ?? -1, settings: machineAutostop(m), matches: new Map(), addresses: new Map() }));
    return f;
  }

  /** The slot of machine `id`; undefined when the table does not have it. */
  slotOf(id: string): number | undefined {
    return this.slotIds.get(id);
  }

  private selectFor(m: RouteMachine, select: (m: RouteMachine) => ServiceMatch | undefined, f: MachineFacts): ServiceMatch | undefined {
    const cache = f.matches;
    if (cache.has(select)) return cache.get(select);
    const match = select(m);
    // Selectors are a few long-lived functions (one per listener kind or TCP port); the bound keeps
    // a caller that makes one per request from growing the map.
    if (cache.size < 16) cache.set(select, match);
    return match;
  }

  /** Whether plain-HTTP requests to `app` are redirected to HTTPS (its first http service says so). */
  forceHttps(app: string): boolean {
    if (this.forceHttpsVersion !== this.table.version) {
      this.forceHttpsCache.clear();
      this.forceHttpsVersion = this.table.version;
    }
    let v = this.forceHttpsCache.get(app);
    if (v === undefined) {
      v = false;
      for (const m of this.table.app(app)) {
        const s = httpService(m, 'http');
        if (s) {
          v = s.forceHttps;
          break;
        }
      }
      this.forceHttpsCache.set(app, v);
    }
    return v;
  }

  /**
   * Applies one route event. The owner thread assigns slots to the machines it names and answers
   * them (to send along to data-plane threads); a data-plane thread passes the owner's `slots`.
   */
  apply(event: RouteEvent, slots?: Record<string, number>): Record<string, number> {
    const named = event.type === 'snapshot' ? event.machines : event.type === 'upsert' ? [event.machine] : [];
    const assigned: Record<string, number> = {};
    if (event.type === 'snapshot') {
      const keep = new Set(named.map((m) => m.id));
      for (const id of [...this.slotIds.keys()]) if (!keep.has(id)) this.forgetSlot(id);
    } else if (event.type === 'remove') {
      this.forgetSlot(event.machine_id);
    }
    for (const m of named) {
      const slot = this.allocator ? this.allocator.assign(m.id) : slots?.[m.id];
      if (slot === undefined) {
        // Every slot taken: the machine is in the table (404s stay right) but never chosen.
        if (!this.failureLogged) this.options.logger.error('proxy: no slot left for a machine; it gets no traffic', { machine: m.id, capacity: this.state.capacity });
        this.failureLogged = true;
        continue;
      }
      assigned[m.id] = slot;
      this.slotIds.set(m.id, slot);
    }
    if (this.allocator && event.type === 'upsert') {
      const slot = assigned[event.machine.id];
      const o = slot === undefined ? undefined : this.state.override(slot);
      // The stream confirms our change, or is news from well after it (a stale line from before our
      // change can only arrive shortly after it).
      if (o && (o.state === event.machine.state || Date.now() - o.setAt > 1000)) this.state.clearOverride(slot!);
      if (slot !== undefined && event.machine.state === 'started' && this.state.lastActive(slot) === 0) this.state.setLastActive(slot, Date.now());
    }
    for (const app of this.table.apply(event)) this.notify(app);
    return assigned;
  }

  private forgetSlot(id: string): void {
    if (!this.slotIds.delete(id)) return;
    this.allocator?.retire(id);
    // Facts cache slots: start over so no machine object keeps a freed one.
    this.perMachine = new WeakMap();
  }

  /** The state this proxy believes: its own recent change wins over a stale table for a while. */
  stateOf(m: RouteMachine): string {
    const slot = this.facts(m).slot;
    if (slot < 0 || !this.state.hasOverride(slot)) return m.state; // the usual case
    const o = this.state.override(slot)!;
    if (o.until > Date.now()) return o.state;
    if (this.allocator) this.state.clearOverride(slot);
    return m.state;
  }

  /** In-flight requests or connections on machine `id`, over every thread. */
  loadOf(id: string): number {
    const slot = this.slotIds.get(id);
    return slot === undefined ? 0 : this.state.load(slot);
  }

  queueDepth(): number {
    let n = 0;
    for (const v of this.queued.values()) n += v;
    return n;
  }

  private notify(app: string): void {
    const set = this.waiters.get(app);
    if (!set) return;
    this.waiters.delete(app);
    for (const w of set) w.wake();
  }

  private waitForChange(app: string, deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.waiters.get(app);
      if (!set) this.waiters.set(app, (set = new Set()));
      const waiter: Waiter = {
        wake: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      // Another thread's release or autostop does not notify this one: with more than one thread a
      // queued request also looks again every CROSS_THREAD_POLL_MS.
      const left = Math.max(0, deadline - Date.now());
      const polled = this.state.threads > 1 && left > CROSS_THREAD_POLL_MS;
      const timer = setTimeout(() => {
        this.waiters.get(app)?.delete(waiter);
        resolve(polled);
      }, polled ? CROSS_THREAD_POLL_MS : left);
      set.add(waiter);
    });
  }

  private address(m: RouteMachine, internalPort: number): { host: string; port: number; key: string } {
    const cache = this.facts(m).addresses;
    let a = cache.get(internalPort);
    const resolve = this.options.resolveAddress;
    if (!resolve) {
      // A machine object's address never changes (an upsert brings a new object).
      if (!a) cache.set(internalPort, (a = { host: m.private_ip, port: internalPort, key: `${m.private_ip}|${internalPort}` }));
      return a;
    }
    // Resolved every time (the test seam may re-point a machine); the key string is kept.
    const { host, port } = resolve(m, internalPort);
    if (!a || a.host !== host || a.port !== port) cache.set(internalPort, (a = { host, port, key: `${host}|${port}` }));
    return a;
  }

  /**
   * Counts one request or connection on `m`; undefined when autostop began draining it meanwhile or
   * another thread took its last place under the hard limit (the caller decides again).
   */
  private lease(m: RouteMachine, match: ServiceMatch, slot: number): Lease | undefined {
    const state = this.state;
    // The balancer saw room; with other threads leasing too, enter checks again (hard limit, draining).
    if (!state.enter(slot, match.hardLimit)) return undefined;
    let released = false;
    const a = this.address(m, match.internalPort);
    return {
      machine: m,
      match,
      host: a.host,
      port: a.port,
      key: a.key,
      release: () => {
        if (released) return;
        released = true;
        // Idle from now (as far as this thread knows): autostop measures idleness from the last
        // lease's end, and never takes a machine with load on any thread anyway.
        if (state.leave(slot) === 0) state.setLastActive(slot, Date.now());
        if (this.waiters.size > 0 && this.waiters.has(m.app_name)) this.notify(m.app_name);
      },
    };
  }

  /** One balancing decision for `app` now (the first step of `acquire`, synchronous). */
  private plan(app: string, select: (m: RouteMachine) => ServiceMatch | undefined, hints: AcquireOptions) {
    const machines = this.table.app(app);
    if (machines.length === 0) throw new ProxyError(503, `app "${app}" has no machines`);
    const candidates: PoolCandidate[] = [];
    let autostart = false;
    for (const m of machines) {
      if (hints.instance && m.id !== hints.instance) continue;
      if (hints.region && m.region !== hints.region) continue;
      if (hints.exclude && m.id === hints.exclude) continue;
      const f = this.facts(m);
      const slot = f.slot;
      if (slot < 0) continue;
      const match = this.selectFor(m, select, f);
      if (!match) continue;
      const settings = f.settings;
      autostart ||= settings.autostart;
      const shared = this.state;
      const state = shared.draining(slot) ? 'stopping' : this.stateOf(m);
      const failedUntil = shared.failedUntil(slot);
      const hostOk = m.host_status === 'ok';
      candidates.push({
        id: m.id,
        region: m.region,
        state,
        routable: state === 'started' && !m.cordoned && hostOk && checksPass(m, shared.hasOverride(slot)),
        startable: settings.autostart && !m.cordoned && hostOk && !(failedUntil > 0 && failedUntil > Date.now()),
        starting: shared.starting(slot) || (this.starts.size > 0 && this.starts.has(m.id)),
        load: shared.load(slot),
        slot,
        softLimit: match.softLimit,
        hardLimit: match.hardLimit,
        m,
        match,
      });
    }
    if (candidates.length === 0) {
      const what = hints.instance ? `machine ${hints.instance}` : hints.region ? `a machine in region ${hints.region}` : 'a machine';
      throw new ProxyError(503, `app "${app}" has no ${what} with a service for this port`);
    }
    const d = hints.preferRegions?.length
      ? decide(candidates, { regionOrder: [...hints.preferRegions, ...this.options.regionOrder], autostart })
      : decide(candidates, { regionOrder: this.options.regionOrder, autostart, rank: this.rank });
    return { d, candidates };
  }

  /**
   * The common case without a promise: a machine can take the request right now. Undefined when
   * `acquire` has to queue, start or fail (it decides again from scratch).
   */
  tryAcquire(app: string, select: (m: RouteMachine) => ServiceMatch | undefined, hints: AcquireOptions): Lease | undefined {
    let p: ReturnType<MachinePool['plan']>;
    try {
      p = this.plan(app, select, hints);
    } catch {
      return undefined;
    }
    if (p.d.kind !== 'route') return undefined;
    return this.routeTo(p.d, p.candidates);
  }

  /** The lease the balancer chose; undefined when the machine was drained or filled in between (decide again). */
  private routeTo(d: { id: string; alsoStart?: string }, candidates: PoolCandidate[]): Lease | undefined {
    if (d.alsoStart) {
      const s = candidateOf(candidates, d.alsoStart);
      void this.ensureStarted(s.m, s.match.internalPort).catch(() => undefined);
    }
    const { m, match, slot } = candidateOf(candidates, d.id);
    return this.lease(m, match, slot);
  }

  /**
   * A machine of `app` for one request or connection, per `select` (which service of a machine
   * serves this listener). Queues, autostarts and waits as the balancer decides, within bounds.
   */
  async acquire(app: string, select: (m: RouteMachine) => ServiceMatch | undefined, hints: AcquireOptions = {}): Promise<Lease> {
    const arrived = Date.now();
    const queueDeadline = arrived + this.options.queueTimeoutMs;
    const startDeadline = arrived + this.options.startTimeoutMs;
    const failures: string[] = [];
    let waitReason = '';
    for (;;) {
      const { d, candidates } = this.plan(app, select, hints);
      if (d.kind === 'route') {
        const lease = this.routeTo(d, candidates);
        if (lease) return lease;
        continue;
      }
      if (d.kind === 'start') {
        const { m, match } = candidateOf(candidates, d.id);
        try {
          await this.ensureStarted(m, match.internalPort, startDeadline);
        } catch (err) {
          failures.push(`machine ${m.id} failed to start: ${(err as Error).message}`);
        }
        if (Date.now() > startDeadline) throw new ProxyError(503, `app "${app}": ${failures.at(-1) ?? 'timed out starting a machine'}`);
        continue;
      }
      if (d.kind === 'unavailable') {
        throw new ProxyError(503, `app "${app}": ${d.reason}${failures.length ? `; ${failures.join('; ')}` : ''}`);
      }
      // queue
      waitReason = d.reason;
      const depth = this.queued.get(app) ?? 0;
      if (depth >= this.options.maxQueuedPerApp) throw new ProxyError(503, `app "${app}" is over capacity: ${waitReason}, and ${depth} requests are already queued`);
      const deadline = Math.max(queueDeadline, this.starts.size > 0 ? startDeadline : 0);
      if (Date.now() >= deadline) throw new ProxyError(503, `app "${app}" is over capacity: ${waitReason}; waited ${Date.now() - arrived} ms`);
      this.queued.set(app, depth + 1);
      this.options.metrics.queueDepth.set(this.queueDepth());
      try {
        await this.waitForChange(app, deadline);
      } finally {
        const left = (this.queued.get(app) ?? 1) - 1;
        if (left <= 0) this.queued.delete(app);
        else this.queued.set(app, left);
        this.options.metrics.queueDepth.set(this.queueDepth());
      }
    }
  }

  /**
   * Starts (or resumes) `m` once, however many requests of this thread ask, and resolves when its
   * service port accepts a connection. A data-plane thread asks the owner thread, which starts it
   * once for all threads.
   */
  ensureStarted(m: RouteMachine, internalPort: number, deadline = Date.now() + this.options.startTimeoutMs): Promise<void> {
    let p = this.starts.get(m.id);
    if (p) return p;
    p = this.options.remoteStart ? this.options.remoteStart(m, internalPort, deadline) : this.startHere(m, internalPort, deadline);
    this.starts.set(m.id, p);
    p.then(undefined, () => undefined).finally(() => {
      this.starts.delete(m.id);
      this.notify(m.app_name);
    });
    return p;
  }

  /**
   * The owner thread's side of a data-plane thread's `remoteStart`: the same start for machine
   * `id` as this thread's own requests get.
   */
  startFor(id: string, internalPort: number, deadline: number): Promise<void> {
    const m = this.table.get(id);
    if (!m) return Promise.reject(new Error(`machine ${id} is not in the route table any more`));
    return this.ensureStarted(m, internalPort, deadline);
  }

  /** The start itself, in the owner thread: the API call, then waiting for the port; failures back off. */
  private startHere(m: RouteMachine, internalPort: number, deadline: number): Promise<void> {
    const began = Date.now();
    const from = this.stateOf(m);
    const slot = this.facts(m).slot;
    if (slot >= 0) this.state.setStarting(slot, true);
    const p = (async () => {
      const t0 = performance.now();
      try {
        await this.options.client!.machines.start(m.app_name, m.id);
      } catch (err) {
        // Someone else started it meanwhile: fine, it answers below.
        if (!/already started|is started|current state: started/i.test((err as Error).message)) throw err;
      }
      const t1 = performance.now();
      if (slot >= 0) this.state.setOverride(slot, 'started', Date.now() + 10_000, Date.now());
      const { host, port } = this.address(m, internalPort);
      const attempts = await waitForPort(host, port, deadline);
      const t2 = performance.now();
      if (slot >= 0) this.state.setLastActive(slot, Date.now());
      this.options.metrics.autostarts.inc({ app: m.app_name, from });
      this.options.metrics.autostartSeconds.observe((Date.now() - began) / 1000);
      // The split says whose time it was: the API/agent start, or the app coming up to listen.
      this.options.logger.info('autostart: machine answers', {
        app: m.app_name, machine: m.id, from, ms: Date.now() - began,
        api_ms: Number((t1 - t0).toFixed(2)), port_wait_ms: Number((t2 - t1).toFixed(2)), connect_attempts: attempts,
      });
    })();
    p.then(
      () => undefined,
      (err: unknown) => {
        const reason = (err as Error).message;
        if (slot >= 0) this.state.setFailedUntil(slot, Date.now() + this.options.failedStartBackoffMs);
        this.options.metrics.autostartFailures.inc({ app: m.app_name });
        this.options.logger.warn('autostart: machine failed to start', { app: m.app_name, machine: m.id, error: reason });
      },
    ).finally(() => {
      if (slot >= 0) this.state.setStarting(slot, false);
    });
    return p;
  }

  // ---- autostop hooks (owner thread) ----------------------------------------------------------

  autostopSnapshot(): AutostopMachine[] {
    const now = Date.now();
    const out: AutostopMachine[] = [];
    for (const app of this.table.apps()) {
      for (const m of this.table.app(app)) {
        const slot = this.facts(m).slot;
        if (m.services.length === 0 || slot < 0 || this.state.draining(slot) || this.state.starting(slot)) continue;
        const settings = machineAutostop(m);
        const soft = Math.min(...m.services.map((s) => s.concurrency?.soft_limit ?? 20));
        out.push({
          id: m.id, app, region: m.region, state: this.stateOf(m), autostop: settings.autostop, minRunning: settings.minRunning,
          load: this.state.load(slot), softLimit: soft, idleMs: now - this.state.lastActive(slot),
        });
      }
    }
    return out;
  }

  /** Marks `id` draining (no new traffic on any thread) unless something is in flight or starting. */
  drain(id: string): boolean {
    const slot = this.slotIds.get(id);
    return slot !== undefined && this.state.tryDrain(slot);
  }

  drained(id: string, result: { ok: true; state: 'stopped' | 'suspended' } | { ok: false }): void {
    const slot = this.slotIds.get(id);
    if (slot !== undefined) {
      if (result.ok) this.state.setOverride(slot, result.state, Date.now() + 10_000, Date.now());
      this.state.setLastActive(slot, 0);
      this.state.endDrain(slot);
    }
    const m = this.table.get(id);
    if (m) this.notify(m.app_name);
  }
}

/**
 * Resolves once `host:port` accepts a TCP connection (the app is listening), retrying until
 * `deadline`; answers how many attempts it took. A refused connect on a local bridge costs tens of
 * microseconds, so the first second retries every 1–2 ms (a request is waiting on it), later ones
 * back off to 50 ms.
 */
export async function waitForPort(host: string, port: number, deadline: number): Promise<number> {
  const began = Date.now();
  let delay = 1;
  for (let attempt = 1; ; attempt++) {
    const error = await new Promise<Error | undefined>((resolve) => {
      const s: Socket = connect({ host, port });
      const t = setTimeout(() => s.destroy(new Error('connect timeout')), Math.max(50, Math.min(1000, deadline - Date.now())));
      s.once('connect', () => {
        clearTimeout(t);
        s.destroy();
        resolve(undefined);
      });
      s.once('error', (err) => {
        clearTimeout(t);
        resolve(err);
      });
    });
    if (!error) return attempt;
    if (Date.now() + delay > deadline) throw new Error(`its service at [${host}]:${port} did not accept connections in time (${error.message})`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Date.now() - began < 1000 ? Math.min(delay * 2, 2) : Math.min(delay * 2, 50);
  }
}
