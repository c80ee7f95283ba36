/**
 * What the proxy's threads must agree on per machine, in one (Shared)ArrayBuffer: in-flight load
 * per thread, the draining and starting flags, when it was last active, until when a failed start
 * keeps it out, and the state this proxy caused (a start or an autostop) before the route stream
 * confirms it. One thread (the main one) owns starts, autostop and slot numbers; data-plane threads
 * (data-plane.ts) count their own load and read the rest.
 *
 * A machine is a slot number, assigned by the owner when the route stream first names it and sent
 * to the other threads with the event. A removed machine's slot is reused only after a quarantine
 * and at zero load, so a thread that has not yet seen the removal cannot count into a new machine.
 *
 * Two invariants need care across threads. "Autostop never takes a machine with load": `enter`
 * (add own load, then check draining) and `tryDrain` (set draining, then check every load) are
 * sequentially consistent Atomics in opposite order, so at least one of them sees the other and
 * backs off. "Never over the hard limit": `enter` adds its own load first and then checks the
 * total, so of two threads racing for the last place at least one sees both counts.
 * @module
 */

const DRAINING = 1;
const STARTING = 2;
/** Override state codes live in bits 8–15 of the flags word. */
const OVERRIDE_SHIFT = 8;
const OVERRIDE_MASK = 0xff << OVERRIDE_SHIFT;
const OVERRIDE_STATES = ['', 'started', 'stopped', 'suspended'] as const;
export type OverrideState = Exclude<(typeof OVERRIDE_STATES)[number], ''>;

/** Float64 fields per slot. */
const LAST_ACTIVE = 0;
const FAILED_UNTIL = 1;
const OVERRIDE_UNTIL = 2;
const OVERRIDE_SET_AT = 3;
const TIMES = 4;

/** Machines one proxy can follow (slots); 4.5 MB of address space at two threads, touched as used. */
export const DEFAULT_MACHINE_CAPACITY = 65_536;
/** A removed machine's slot is reused no sooner than this (other threads apply the removal first). */
const SLOT_QUARANTINE_MS = 10_000;

export interface MachineStateLayout {
  buffer: SharedArrayBuffer | ArrayBuffer;
  threads: number;
  capacity: number;
}

export class MachineState {
  readonly threads: number;
  readonly capacity: number;
  private readonly loads: Int32Array;
  private readonly flags: Int32Array;
  private readonly times: Float64Array;
  /** This thread's column in `loads`. */
  private readonly own: number;

  /** A new state for `threads` threads (shared memory when more than one). */
  static create(threads: number, capacity = DEFAULT_MACHINE_CAPACITY): MachineStateLayout {
    const bytes = capacity * (4 * threads + 4 + 8 * TIMES);
    return { buffer: threads > 1 ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes), threads, capacity };
  }

  constructor(readonly layout: MachineStateLayout, readonly threadIndex = 0) {
    const { buffer, threads, capacity } = layout;
    if (!Number.isInteger(threadIndex) || threadIndex < 0 || threadIndex >= threads) throw new Error(`machine state: thread index ${threadIndex} is not in 0..${threads - 1}`);
    this.threads = threads;
    this.capacity = capacity;
    this.times = new Float64Array(buffer, 0, capacity * TIMES);
    this.loads = new Int32Array(buffer, capacity * TIMES * 8, capacity * threads);
    this.flags = new Int32Array(buffer, capacity * (TIMES * 8 + 4 * threads), capacity);
    this.own = threadIndex * capacity;
  }

  /** Total in-flight load of the machine in `slot`, over every thread. */
  load(slot: number): number {
    if (this.threads === 1) return this.loads[slot]!;
    let n = 0;
    for (let t = 0; t < this.threads; t++) n += Atomics.load(this.loads, t * this.capacity + slot);
    return n;
  }

  /** This thread's load on `slot`. */
  ownLoad(slot: number): number {
    return this.loads[this.own + slot]!;
  }

  /**
   * Counts one more request or connection of this thread; false (nothing counted) when the machine
   * is draining, or when the total over every thread would pass `limit` (two threads that both saw
   * room for one more: at least one of them sees the other's count and backs off).
   */
  enter(slot: number, limit = Infinity): boolean {
    Atomics.add(this.loads, this.own + slot, 1);
    if ((Atomics.load(this.flags, slot) & DRAINING) === 0 && (this.threads === 1 || this.load(slot) <= limit)) return true;
    Atomics.sub(this.loads, this.own + slot, 1);
    return false;
  }

  /** Ends one `enter`; answers this thread's remaining load on the machine. */
  leave(slot: number): number {
    return Atomics.sub(this.loads, this.own + slot, 1) - 1;
  }

  /** Marks the machine draining if nothing is in flight on any thread and no start is; false otherwise. */
  tryDrain(slot: number): boolean {
    if ((Atomics.load(this.flags, slot) & (DRAINING | STARTING)) !== 0) return false;
    Atomics.or(this.flags, slot, DRAINING);
    if (this.load(slot) === 0) return true;
    Atomics.and(this.flags, slot, ~DRAINING);
    return false;
  }

  endDrain(slot: number): void {
    Atomics.and(this.flags, slot, ~DRAINING);
  }

  draining(slot: number): boolean {
    return (this.flags[slot]! & DRAINING) !== 0;
  }

  setStarting(slot: number, on: boolean): void {
    if (on) Atomics.or(this.flags, slot, STARTING);
    else Atomics.and(this.flags, slot, ~STARTING);
  }

  starting(slot: number): boolean {
    return (this.flags[slot]! & STARTING) !== 0;
  }

  lastActive(slot: number): number {
    return this.times[slot * TIMES + LAST_ACTIVE]!;
  }

  setLastActive(slot: number, at: number): void {
    this.times[slot * TIMES + LAST_ACTIVE] = at;
  }

  failedUntil(slot: number): number {
    return this.times[slot * TIMES + FAILED_UNTIL]!;
  }

  setFailedUntil(slot: number, until: number): void {
    this.times[slot * TIMES + FAILED_UNTIL] = until;
  }

  /** The state this proxy caused and until when it wins over the route table; undefined when none. */
  override(slot: number): { state: OverrideState; until: number; setAt: number } | undefined {
    const code = (this.flags[slot]! & OVERRIDE_MASK) >>> OVERRIDE_SHIFT;
    if (code === 0) return undefined;
    const base = slot * TIMES;
    return { state: OVERRIDE_STATES[code] as OverrideState, until: this.times[base + OVERRIDE_UNTIL]!, setAt: this.times[base + OVERRIDE_SET_AT]! };
  }

  hasOverride(slot: number): boolean {
    return (this.flags[slot]! & OVERRIDE_MASK) !== 0;
  }

  setOverride(slot: number, state: OverrideState, until: number, setAt: number): void {
    const base = slot * TIMES;
    this.times[base + OVERRIDE_UNTIL] = until;
    this.times[base + OVERRIDE_SET_AT] = setAt;
    const code = OVERRIDE_STATES.indexOf(state) << OVERRIDE_SHIFT;
    for (;;) {
      const old = Atomics.load(this.flags, slot);
      if (Atomics.compareExchange(this.flags, slot, old, (old & ~OVERRIDE_MASK) | code) === old) return;
    }
  }

  clearOverride(slot: number): void {
    Atomics.and(this.flags, slot, ~OVERRIDE_MASK);
  }

  /** Zeroes a slot for reuse: flags, times and every thread's load. */
  reset(slot: number): void {
    Atomics.store(this.flags, slot, 0);
    this.times.fill(0, slot * TIMES, slot * TIMES + TIMES);
    for (let t = 0; t < this.threads; t++) Atomics.store(this.loads, t * this.capacity + slot, 0);
  }

  /** Zeroes thread `t`'s loads (a data-plane thread that died leaves nothing in flight). */
  clearThread(t: number): void {
    for (let slot = 0; slot < this.capacity; slot++) Atomics.store(this.loads, t * this.capacity + slot, 0);
  }
}

/**
 * Slot numbers by machine id, kept by the owning thread. `retire` starts a removed machine's
 * quarantine; `sweep` returns slots to use whose quarantine is over and whose load is 0.
 */
export class SlotAllocator {
  private readonly byId = new Map<string, number>();
  private readonly free: number[] = [];
  private readonly retired: { slot: number; at: number }[] = [];
  private next = 0;

  constructor(private readonly state: MachineState, private readonly now: () => number = Date.now) {}

  slotOf(id: string): number | undefined {
    return this.byId.get(id);
  }

  /** The slot of `id`, assigned when new; undefined when every slot is taken. */
  assign(id: string): number | undefined {
    let slot = this.byId.get(id);
    if (slot !== undefined) return slot;
    this.sweep();
    slot = this.free.pop() ?? (this.next < this.state.capacity ? this.next++ : undefined);
    if (slot === undefined) return undefined;
    this.state.reset(slot);
    this.byId.set(id, slot);
    return slot;
  }

  retire(id: string): void {
    const slot = this.byId.get(id);
    if (slot === undefined) return;
    this.byId.delete(id);
    this.retired.push({ slot, at: this.now() });
  }

  ids(): IterableIterator<string> {
    return this.byId.keys();
  }

  private sweep(): void {
    const now = this.now();
    for (let i = 0; i < this.retired.length; ) {
      const r = this.retired[i]!;
      if (now - r.at >= SLOT_QUARANTINE_MS && this.state.load(r.slot) === 0 && !this.state.starting(r.slot)) {
        this.free.push(r.slot);
        this.retired.splice(i, 1);
      } else i++;
    }
  }
}
