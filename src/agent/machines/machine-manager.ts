/**
 * The machine manager: every operation on the machines of this host, in one place.
 *
 * Each operation runs in its machine's queue (`keyed-queue.ts`), checks the state machine
 * (`core/machine-states.ts`), then:
 *   1. writes the transient state (`starting`, `stopping`, ...) together with a pending op-log entry,
 *   2. asks the driver to act,
 *   3. writes the resulting persistent state, its user-visible event and the op's completion.
 * Every write goes through `AgentDb.change`, which numbers it (`seq`) and is published to the event
 * stream right after it commits. A crash between 1 and 3 leaves a pending op that `recovery.ts`
 * finishes on the next start.
 *
 * Outcome rules worth knowing:
 * - A start that throws does not fail the request: the machine goes to `failed` with a `start`
 *   event whose `request.error` carries the message, and the answer shows that state. (A create
 *   with `start: true` thus still creates the machine, as Fly does.)
 * - An update whose new version the driver refuses fails the request and keeps the old version.
 * - Exits the workload makes by itself (driver `onExit`) produce an `exit` event and then follow
 *   `restart-policy.ts`; a pending restart waits out its backoff in state `stopped` and is cancelled
 *   by any user operation (a `stop` of such a machine just cancels it).
 * @module
 */
import type { AgentEvent, AgentMachine, AgentMachineSpec, AgentOpResult } from '../../api-types/agent.js';
import type { ExecResponse, MachineEvent, ProcessStat } from '../../api-types/machine.js';
import { HangarError, notFound, toHangarError } from '../../core/errors.js';
import { newUlid } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { assertCanPerform, type MachineState } from '../../core/machine-states.js';
import type { Driver, ExitInfo } from '../drivers/driver.js';
import type { ChangeInput, MachineRow, OpKind } from '../store/agent-db.js';
import { AgentDb } from '../store/agent-db.js';
import type { EventHub } from './event-hub.js';
import { KeyedQueue } from './keyed-queue.js';
import { type Backoff, DEFAULT_BACKOFF, decideAfterExit, exitEvent, stopOptions } from './restart-policy.js';

export type EventSource = 'user' | 'flyd';

export interface MachineManagerOptions {
  db: AgentDb;
  driver: Driver;
  hub: EventHub;
  logger: Logger;
  restartBackoff?: Backoff;
  /** Default `exec` timeout when the request names none. */
  execTimeoutMs?: number;
}

/** Collects the changes one operation makes, for its answer. */
export class OpRun {
  readonly events: AgentEvent[] = [];
  opId: number | undefined;
}

export interface StopRequest {
  signal?: number | undefined;
  timeout_ms?: number | undefined;
}

export class MachineManager {
  readonly db: AgentDb;
  readonly driver: Driver;
  readonly logger: Logger;
  readonly queue = new KeyedQueue();
  private readonly hub: EventHub;
  private readonly backoff: Backoff;
  private readonly execTimeoutMs: number;
  /** Restarts waiting out their backoff, with the op that records them. */
  private readonly pendingRestarts = new Map<string, { timer: NodeJS.Timeout; opId: number }>();
  private closed = false;

  constructor(options: MachineManagerOptions) {
    this.db = options.db;
    this.driver = options.driver;
    this.hub = options.hub;
    this.logger = options.logger;
    this.backoff = options.restartBackoff ?? DEFAULT_BACKOFF;
    this.execTimeoutMs = options.execTimeoutMs ?? 30_000;
    this.driver.onExit((id, exit) => this.onDriverExit(id, exit));
  }

  // ---- reads ---------------------------------------------------------------------------------

  get(id: string): AgentMachine {
    return toAgentMachine(this.row(id));
  }

  list(): AgentMachine[] {
    return this.db.listMachines().map(toAgentMachine);
  }

  // ---- user operations -------------------------------------------------------------------------

  create(spec: AgentMachineSpec, start: boolean): Promise<AgentOpResult> {
    return this.op(spec.id, async (run) => {
      const existing = this.db.getMachine(spec.id);
      if (existing) {
        // A retried create of the same version answers what exists; anything else is a conflict.
        if (existing.state !== 'destroyed' && existing.version === spec.version) return;
        throw new HangarError('failed_precondition', `machine ${spec.id} already exists on this host (state '${existing.state}', version ${existing.version})`);
      }
      this.apply(run, { id: spec.id, state: 'creating', spec, beginOp: { kind: 'create', targetVersion: spec.version, args: { start } } });
      let privateIp: string;
      let imageDigest: string | undefined;
      try {
        ({ privateIp, imageDigest } = await this.driver.create(spec));
      } catch (err) {
        // Roll back: nothing of a machine that could not be prepared may remain.
        await this.driver.destroy(spec.id).catch((e) => this.logger.warn('rollback of a failed create could not clean up', { machine: spec.id, err: String(e) }));
        this.apply(run, { id: spec.id, state: 'destroyed', finishOp: { id: run.opId!, outcome: `rolled_back: ${toHangarError(err).message}` } });
        throw err;
      }
      this.apply(run, { id: spec.id, state: 'created', private_ip: privateIp, event: this.event('launch', 'created', 'user'), finishOp: { id: run.opId!, outcome: 'done' } }, imageDigest);
      if (start) await this.doStart(run, spec.id, 'user');
    });
  }

  start(id: string): Promise<AgentOpResult> {
    return this.op(id, (run) => this.doStart(run, id, 'user'));
  }

  stop(id: string, request: StopRequest = {}): Promise<AgentOpResult> {
    return this.op(id, async (run) => {
      const row = this.row(id);
      if (row.state === 'stopped' && this.pendingRestarts.has(id)) {
        this.cancelPendingRestart(id, 'cancelled by stop');
        return;
      }
      assertCanPerform(id, row.state, 'stop');
      this.cancelPendingRestart(id, 'cancelled by stop');
      await this.doStop(run, row, request, 'user');
    });
  }

  restart(id: string, request: StopRequest = {}): Promise<AgentOpResult> {
    return this.op(id, async (run) => {
      const row = this.row(id);
      assertCanPerform(id, row.state, 'restart');
      this.apply(run, { id, state: 'restarting', beginOp: { kind: 'restart', targetVersion: row.version } });
      try {
        await this.driver.stop(id, stopOptions(row.spec.config, request));
        await this.driver.start(id);
      } catch (err) {
        this.applyFailed(run, id, 'restart', 'user', err);
        return;
      }
      this.apply(run, { id, state: 'started', restart_count: 0, event: this.event('restart', 'started', 'user'), finishOp: { id: run.opId!, outcome: 'done' } });
    });
  }

  suspend(id: string): Promise<AgentOpResult> {
    return this.op(id, async (run) => {
      const row = this.row(id);
      assertCanPerform(id, row.state, 'suspend');
      if (!this.driver.capabilities.suspend) throw new HangarError('failed_precondition', `the ${this.driver.name} driver cannot suspend machines; stop it instead`);
      this.apply(run, { id, state: 'suspending', beginOp: { kind: 'suspend', targetVersion: row.version } });
      try {
        await this.driver.suspend(id);
      } catch (err) {
        // Nothing was suspended: go back to what the driver says is true, and tell the caller.
        const running = (await this.driver.inspect(id)).state === 'running';
        this.apply(run, { id, state: running ? 'started' : 'stopped', finishOp: { id: run.opId!, outcome: `failed: ${toHangarError(err).message}` } });
        throw err;
      }
      this.apply(run, { id, state: 'suspended', event: this.event('suspend', 'suspended', 'user'), finishOp: { id: run.opId!, outcome: 'done' } });
    });
  }

  signal(id: string, signal: number): Promise<AgentOpResult> {
    return this.op(id, async () => {
      const row = this.row(id);
      assertCanPerform(id, row.state, 'signal');
      if (!this.driver.capabilities.signal) throw new HangarError('failed_precondition', `the ${this.driver.name} driver cannot send signals`);
      // No state change here: if the signal ends the workload, the driver reports an exit.
      await this.driver.signal(id, signal);
    });
  }

  update(spec: AgentMachineSpec, start: boolean): Promise<AgentOpResult> {
    return this.op(spec.id, async (run) => {
      const row = this.row(spec.id);
      assertCanPerform(spec.id, row.state, 'update');
      this.cancelPendingRestart(spec.id, 'cancelled by update');
      this.apply(run, { id: spec.id, state: 'updating', beginOp: { kind: 'update', targetVersion: spec.version, args: { spec, start, prev_state: row.state } } });
      await this.finishUpdate(run, row, spec, start, 'user');
    });
  }

  destroy(id: string, force: boolean): Promise<AgentOpResult> {
    return this.op(id, async (run) => {
      const row = this.row(id);
      if (row.state === 'destroyed') return; // idempotent
      assertCanPerform(id, row.state, force ? 'destroy_force' : 'destroy');
      await this.doDestroy(run, row, 'user');
    });
  }

  async exec(id: string, request: { command: string[]; stdin?: string | undefined; timeout_ms?: number | undefined }): Promise<ExecResponse> {
    // Not queued: a long command must not hold up a stop of the same machine.
    const row = this.row(id);
    assertCanPerform(id, row.state, 'exec');
    if (!this.driver.capabilities.exec) throw new HangarError('failed_precondition', `the ${this.driver.name} driver cannot exec`);
    const options: { command: string[]; timeoutMs: number; stdin?: string } = { command: request.command, timeoutMs: request.timeout_ms ?? this.execTimeoutMs };
    if (request.stdin !== undefined) options.stdin = request.stdin;
    return this.driver.exec(id, options);
  }

  async ps(id: string): Promise<ProcessStat[]> {
    const row = this.row(id);
    assertCanPerform(id, row.state, 'ps');
    if (!this.driver.capabilities.ps) throw new HangarError('failed_precondition', `the ${this.driver.name} driver cannot list processes`);
    return this.driver.ps(id);
  }

  /** Stops reacting to exits and pending restarts, then waits (bounded) for running ops. */
  async close(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    // Pending restarts stay pending in the op log; recovery resumes them on the next start.
    for (const { timer } of this.pendingRestarts.values()) clearTimeout(timer);
    this.pendingRestarts.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.queue.idle(), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  // ---- building blocks (also used by recovery.ts) ----------------------------------------------

  /** Runs `body` in the machine's queue and answers the machine and the changes it made. */
  op(id: string, body: (run: OpRun) => Promise<void>): Promise<AgentOpResult> {
    if (this.closed) return Promise.reject(new HangarError('unavailable', 'the agent is shutting down; retry'));
    return this.queue.run(id, async () => {
      const run = new OpRun();
      await body(run);
      return { machine: this.get(id), events: run.events };
    });
  }

  /** Writes one change (and its op bookkeeping), publishes it and records it in `run`. */
  apply(run: OpRun, change: ChangeInput, imageDigest?: string): MachineRow {
    const result = this.db.change(change);
    if (imageDigest) result.event.image_digest = imageDigest;
    if (result.opId !== undefined) run.opId = result.opId;
    run.events.push(result.event);
    this.hub.publish(result.event);
    return result.row;
  }

  event(type: string, status: MachineState, source: EventSource, request?: Record<string, unknown>): MachineEvent {
    const event: MachineEvent = { id: newUlid(), type, status, source, timestamp: Date.now() };
    if (request) event.request = request;
    return event;
  }

  row(id: string): MachineRow {
    const row = this.db.getMachine(id);
    if (!row) throw notFound(`machine ${id}`);
    return row;
  }

  /** Starts (or resumes) a settled machine; a driver failure leaves it `failed`. */
  async doStart(run: OpRun, id: string, source: EventSource, restartAttempt?: number): Promise<void> {
    const row = this.row(id);
    assertCanPerform(id, row.state, 'start');
    if (source === 'user') this.cancelPendingRestart(id, 'superseded by start');
    const kind: OpKind = restartAttempt === undefined ? 'start' : 'restart_after_exit';
    this.apply(run, { id, state: 'starting', beginOp: { kind, targetVersion: row.version, args: { source } } });
    try {
      const status = await this.driver.inspect(id);
      if (row.state === 'suspended' && status.state === 'paused') {
        await this.driver.resume(id);
      } else {
        if (status.state === 'absent') await this.driver.create(row.spec);
        await this.driver.start(id);
      }
    } catch (err) {
      this.applyFailed(run, id, restartAttempt === undefined ? 'start' : 'restart', source, err);
      return;
    }
    const event = restartAttempt === undefined
      ? this.event('start', 'started', source)
      : this.event('restart', 'started', source, { restart_count: restartAttempt });
    this.apply(run, { id, state: 'started', restart_count: restartAttempt ?? 0, event, finishOp: { id: run.opId!, outcome: 'done' } });
  }

  async doStop(run: OpRun, row: MachineRow, request: StopRequest, source: EventSource): Promise<void> {
    this.apply(run, { id: row.id, state: 'stopping', beginOp: { kind: 'stop', targetVersion: row.version, args: { ...request } } });
    let exit: ExitInfo;
    try {
      exit = await this.driver.stop(row.id, stopOptions(row.spec.config, request));
    } catch (err) {
      const error = toHangarError(err);
      if (error.code !== 'not_found') {
        this.applyFailed(run, row.id, 'stop', source, err);
        return;
      }
      exit = { exit_code: 0, signal: 0, oom_killed: false, requested_stop: true, exited_at: Date.now() };
    }
    this.apply(run, {
      id: row.id, state: 'stopped', restart_count: 0,
      event: this.event('stop', 'stopped', source, { exit_event: exitEvent(exit, false) }),
      finishOp: { id: run.opId!, outcome: 'done' },
    });
  }

  async doDestroy(run: OpRun, row: MachineRow, source: EventSource): Promise<void> {
    this.cancelPendingRestart(row.id, 'cancelled by destroy');
    this.apply(run, { id: row.id, state: 'destroying', beginOp: { kind: 'destroy', targetVersion: row.version } });
    // The op stays pending if the driver fails, so recovery retries the (idempotent) destroy.
    await this.driver.destroy(row.id);
    this.apply(run, { id: row.id, state: 'destroyed', event: this.event('destroy', 'destroyed', source), finishOp: { id: run.opId!, outcome: 'done' } });
  }

  /** The second half of an update, after `updating` was written: also used to finish one in recovery. */
  async finishUpdate(run: OpRun, row: MachineRow, spec: AgentMachineSpec, start: boolean, source: EventSource): Promise<void> {
    const prevState = row.state === 'updating' ? 'stopped' : row.state;
    let privateIp: string;
    let imageDigest: string | undefined;
    try {
      const status = await this.driver.inspect(row.id);
      if (status.state === 'running' || status.state === 'paused') await this.driver.stop(row.id, stopOptions(row.spec.config));
      ({ privateIp, imageDigest } = await this.driver.create(spec));
    } catch (err) {
      // The old version stays; it may have been stopped on the way.
      const running = (await this.driver.inspect(row.id).catch(() => ({ state: 'absent' }))).state === 'running';
      const state: MachineState = running ? 'started' : prevState === 'created' ? 'created' : prevState === 'failed' ? 'failed' : 'stopped';
      this.apply(run, { id: row.id, state, event: this.event('update', state, source, { error: toHangarError(err).message }), finishOp: { id: run.opId!, outcome: `failed: ${toHangarError(err).message}` } });
      throw err;
    }
    const settled: MachineState = prevState === 'created' ? 'created' : 'stopped';
    this.apply(run, { id: row.id, state: settled, spec, private_ip: privateIp, restart_count: 0, event: this.event('update', settled, source), finishOp: { id: run.opId!, outcome: 'done' } }, imageDigest);
    if (start) await this.doStart(run, row.id, source);
  }

  /**
   * A workload ended by itself (or was found dead by recovery): record the exit, then apply the
   * restart policy. Must run inside the machine's queue.
   */
  async settleExit(run: OpRun, row: MachineRow, exit: ExitInfo, finishOp?: ChangeInput['finishOp']): Promise<void> {
    const decision = decideAfterExit(row.spec.config, exit, row.restart_count, this.backoff);
    const request = { exit_event: exitEvent(exit, decision.action === 'restart'), restart_count: row.restart_count };
    const change: ChangeInput = { id: row.id, state: 'stopped', event: this.event('exit', 'stopped', 'flyd', request) };
    if (finishOp) change.finishOp = finishOp;
    if (decision.action === 'restart') change.beginOp = { kind: 'restart_after_exit', targetVersion: row.version, args: { attempt: decision.attempt, delay_ms: decision.delayMs } };
    const before = run.opId;
    const stopped = this.apply(run, change);
    if (decision.action === 'destroy') {
      await this.doDestroy(run, stopped, 'flyd');
    } else if (decision.action === 'restart') {
      const opId = run.opId!;
      run.opId = before;
      this.scheduleRestart(row.id, opId, decision.delayMs, decision.attempt);
    } else {
      this.logger.info('machine stays stopped after exit', { machine: row.id, reason: decision.reason, exit_code: exit.exit_code });
    }
  }

  /** Schedules the restart recorded by op `opId`; a user operation cancels it. */
  scheduleRestart(id: string, opId: number, delayMs: number, attempt: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      if (this.pendingRestarts.get(id)?.opId !== opId) return;
      this.pendingRestarts.delete(id);
      this.op(id, async (run) => {
        const op = this.db.getOp(opId);
        const row = this.db.getMachine(id);
        if (!op || op.finished_at !== null || !row || row.state !== 'stopped') return;
        this.db.finishOp(opId, 'done');
        await this.doStart(run, id, 'flyd', attempt);
      }).catch((err) => this.logger.warn('restart after exit failed', { machine: id, err: String(err) }));
    }, delayMs);
    this.pendingRestarts.set(id, { timer, opId });
  }

  private cancelPendingRestart(id: string, outcome: string): void {
    const pending = this.pendingRestarts.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pendingRestarts.delete(id);
    this.db.finishOp(pending.opId, outcome);
  }

  private applyFailed(run: OpRun, id: string, type: string, source: EventSource, err: unknown): void {
    const message = toHangarError(err).message;
    this.logger.warn(`machine ${type} failed`, { machine: id, err: message });
    this.apply(run, { id, state: 'failed', event: this.event(type, 'failed', source, { error: message }), finishOp: { id: run.opId!, outcome: `failed: ${message}` } });
  }

  private onDriverExit(id: string, exit: ExitInfo): void {
    if (this.closed) return;
    this.op(id, async (run) => {
      const row = this.db.getMachine(id);
      // Only an exit of the run we believe is live counts; anything else is stale.
      if (!row || row.state !== 'started') return;
      if ((await this.driver.inspect(id)).state === 'running') return;
      await this.settleExit(run, row, exit);
    }).catch((err) => this.logger.error('handling a machine exit failed', { machine: id, err: String(err) }));
  }
}

export function toAgentMachine(row: MachineRow): AgentMachine {
  return { id: row.id, app_name: row.app_name, state: row.state, version: row.version, private_ip: row.private_ip, seq: row.seq, checks: row.checks };
}
