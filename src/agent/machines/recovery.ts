/**
 * Start-up recovery: make every machine's recorded state true again after the agent stopped at an
 * arbitrary point (crash, kill -9, host reboot).
 *
 * 1. Ask the driver what exists (`driver.recover(known)`): it re-attaches exit reporting for live
 *    workloads and removes anything it owns that the machine table does not know (no orphans).
 * 2. For each machine, look at the newest pending op (older ones are superseded) and at what the
 *    driver says *now*, and finish or roll back:
 *
 * | pending op | driver says | result |
 * | --- | --- | --- |
 * | create | anything | rolled back: driver destroy, machine `destroyed` (the caller never got an answer) |
 * | destroy | anything | finished: driver destroy, `destroyed` |
 * | update | anything | finished: stop if running, prepare the new version, `stopped`/`created`, start if asked |
 * | start, restart, restart_after_exit | running | finished: `started` |
 * | start, restart | not running | `stopped` with an `exit` event, then the restart policy |
 * | restart_after_exit | not running | the pending restart runs now |
 * | stop | anything | finished: stop if still running, `stopped` |
 * | suspend | paused / running / other | `suspended` / rolled back to `started` / exit handling |
 * | none, state `started` | not running | the workload died while we were away: `exit` event + restart policy |
 * | none, state `suspended` | not paused | the snapshot is gone: `stopped` |
 * | none, settled not running | running | the stray workload is stopped; state kept |
 *
 * Every machine ends in a persistent (or destroyed) state and every pending op is marked finished.
 * @module
 */
import type { DriverStatus, ExitInfo } from '../drivers/driver.js';
import type { OpRow } from '../store/agent-db.js';
import { type MachineManager, OpRun } from './machine-manager.js';
import { exitEvent, stopOptions } from './restart-policy.js';
import type { AgentMachineSpec } from '../../api-types/agent.js';
import { isSettled, type MachineState } from '../../core/machine-states.js';

export interface RecoveryReport {
  machines: number;
  pendingOps: number;
  /** One line per machine whose state or op recovery had to act on. */
  actions: string[];
}

export async function recoverMachines(manager: MachineManager): Promise<RecoveryReport> {
  const { db, driver, logger } = manager;
  const rows = db.listMachines();
  const pending = db.pendingOps();
  await driver.recover(rows.map((r) => r.spec));
  const byMachine = new Map<string, OpRow[]>();
  for (const op of pending) byMachine.set(op.machine_id, [...(byMachine.get(op.machine_id) ?? []), op]);
  const actions: string[] = [];
  for (const row of rows) {
    const ops = byMachine.get(row.id) ?? [];
    byMachine.delete(row.id);
    try {
      const action = await manager.queue.run(row.id, () => recoverOne(manager, row.id, ops));
      if (action) actions.push(`${row.id}: ${action}`);
    } catch (err) {
      logger.error('recovery of a machine failed; it keeps its recorded state', { machine: row.id, err: String(err) });
      actions.push(`${row.id}: recovery failed: ${String(err)}`);
    }
  }
  // Ops of machines that no longer exist (destroyed before the crash) have nothing left to do.
  for (const ops of byMachine.values()) for (const op of ops) db.finishOp(op.id, 'recovered: machine gone');
  const report = { machines: rows.length, pendingOps: pending.length, actions };
  if (actions.length > 0 || pending.length > 0) logger.info('recovered machines', { ...report });
  return report;
}

const rebootExit = (): ExitInfo => ({ exit_code: 137, signal: 9, oom_killed: false, requested_stop: false, exited_at: Date.now() });

async function recoverOne(manager: MachineManager, id: string, ops: OpRow[]): Promise<string | undefined> {
  const { db, driver } = manager;
  const run = new OpRun();
  for (const stale of ops.slice(0, -1)) db.finishOp(stale.id, 'recovered: superseded');
  const op = ops.at(-1);
  const finish = (outcome: string) => op && { id: op.id, outcome: `recovered: ${outcome}` };
  let row = manager.row(id);
  const status: DriverStatus = await driver.inspect(id);
  const running = status.state === 'running';
  const paused = status.state === 'paused';
  const exitOf = (): ExitInfo => (status.state === 'exited' ? status.exit : rebootExit());

  if (op) run.opId = op.id;
  switch (op?.kind) {
    case 'create':
      await driver.destroy(id);
      manager.apply(run, { id, state: 'destroyed', finishOp: finish('rolled back')! });
      return 'create rolled back';
    case 'destroy':
      await driver.destroy(id);
      manager.apply(run, { id, state: 'destroyed', event: manager.event('destroy', 'destroyed', 'flyd'), finishOp: finish('finished')! });
      return 'destroy finished';
    case 'update': {
      const spec = op.args.spec as AgentMachineSpec;
      const prev = (op.args.prev_state as MachineState | undefined) ?? 'stopped';
      if (row.state !== 'updating') row = manager.apply(run, { id, state: 'updating' });
      await manager.finishUpdate(run, { ...row, state: prev }, spec, op.args.start === true, 'flyd').catch(() => {});
      return `update to ${spec.version} finished`;
    }
    case 'start':
    case 'restart':
    case 'restart_after_exit':
      if (running) {
        manager.apply(run, { id, state: 'started', event: manager.event('start', 'started', 'flyd'), finishOp: finish('was running')! });
        return 'start finished';
      }
      if (op.kind === 'restart_after_exit' && row.state === 'stopped') {
        db.finishOp(op.id, 'recovered: restarting now');
        await manager.doStart(run, id, 'flyd', (op.args.attempt as number | undefined) ?? row.restart_count + 1);
        return 'pending restart resumed';
      }
      await manager.settleExit(run, row, exitOf(), finish('not running')!);
      return 'start did not complete; exit recorded';
    case 'stop': {
      let exit = exitOf();
      if (running || paused) exit = await driver.stop(id, stopOptions(row.spec.config, op.args as { signal?: number; timeout_ms?: number }));
      manager.apply(run, { id, state: 'stopped', restart_count: 0, event: manager.event('stop', 'stopped', 'flyd', { exit_event: exitEvent({ ...exit, requested_stop: true }, false) }), finishOp: finish('finished')! });
      return 'stop finished';
    }
    case 'suspend':
      if (paused) {
        manager.apply(run, { id, state: 'suspended', event: manager.event('suspend', 'suspended', 'flyd'), finishOp: finish('finished')! });
        return 'suspend finished';
      }
      if (running) {
        manager.apply(run, { id, state: 'started', finishOp: finish('rolled back')! });
        return 'suspend rolled back';
      }
      await manager.settleExit(run, row, exitOf(), finish('not running')!);
      return 'suspend found the machine dead; exit recorded';
    case undefined:
      return reconcile(manager, run, id, status, exitOf);
  }
}

/** No op was in flight: compare the recorded state with the driver's. */
async function reconcile(manager: MachineManager, run: OpRun, id: string, status: DriverStatus, exitOf: () => ExitInfo): Promise<string | undefined> {
  const { driver } = manager;
  const row = manager.row(id);
  const running = status.state === 'running';
  const paused = status.state === 'paused';
  if (!isSettled(row.state)) {
    // A transient state without an op cannot be written by the manager; settle it anyway.
    manager.apply(run, { id, state: running ? 'started' : paused ? 'suspended' : 'stopped' });
    return `transient state ${row.state} settled`;
  }
  switch (row.state) {
    case 'started':
      if (running) return undefined;
      if (paused) {
        manager.apply(run, { id, state: 'suspended', event: manager.event('suspend', 'suspended', 'flyd') });
        return 'found paused';
      }
      await manager.settleExit(run, row, exitOf());
      return 'workload gone while the agent was down; exit recorded';
    case 'suspended':
      if (paused) return undefined;
      if (running) {
        manager.apply(run, { id, state: 'started', event: manager.event('start', 'started', 'flyd') });
        return 'found running';
      }
      manager.apply(run, { id, state: 'stopped', event: manager.event('stop', 'stopped', 'flyd', { error: 'the suspended snapshot was lost' }) });
      return 'snapshot lost; stopped';
    default:
      if (running || paused) {
        await driver.stop(id, stopOptions(row.spec.config, { timeout_ms: 1000 }));
        return `stray workload of a ${row.state} machine stopped`;
      }
      if (status.state === 'absent') {
        await driver.create(row.spec);
        return 'prepared again';
      }
      return undefined;
  }
}
