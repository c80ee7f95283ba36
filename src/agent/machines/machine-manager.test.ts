import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { AgentEvent } from '../../api-types/agent.js';
import { HangarError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { SIGNALS } from '../../core/signals.js';
import { FakeDriver } from '../drivers/fake/fake-driver.js';
import { AgentDb } from '../store/agent-db.js';
import { eventKinds, spec, tempDir } from '../testing/agent-fixtures.js';
import { until } from '../../testkit/waiting.js';
import { EventHub } from './event-hub.js';
import { MachineManager } from './machine-manager.js';

interface Harness {
  manager: MachineManager;
  driver: FakeDriver;
  db: AgentDb;
  /** Every change published, in order. */
  seen: AgentEvent[];
  kinds(id: string): string[];
}

let harness: Harness;
let cleanup: () => Promise<void>;

beforeEach(() => {
  const tmp = tempDir();
  const db = new AgentDb(tmp.dir);
  const hub = new EventHub();
  const driver = new FakeDriver();
  const manager = new MachineManager({ db, hub, driver, logger: silentLogger, restartBackoff: { initialMs: 20, maxMs: 60 } });
  const seen: AgentEvent[] = [];
  hub.subscribe((e) => seen.push(e));
  harness = { manager, driver, db, seen, kinds: (id) => eventKinds(seen.filter((e) => e.machine_id === id)) };
  cleanup = async () => {
    await manager.close();
    await driver.close();
    db.close();
    tmp.remove();
  };
});
afterEach(() => cleanup());

const isCode = (code: string) => (err: unknown) => err instanceof HangarError && err.code === code;

describe('machine manager: state transitions', () => {
  test('create with start goes creating → created (launch) → starting → started (start)', async () => {
    const s = spec();
    const result = await harness.manager.create(s, true);
    assert.equal(result.machine.state, 'started');
    assert.match(result.machine.private_ip, /^fdaa:0:7:/);
    assert.deepEqual(result.events.map((e) => e.state), ['creating', 'created', 'starting', 'started']);
    assert.deepEqual(eventKinds(result.events), ['launch:created', 'start:started']);
    const seqs = result.events.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    assert.equal(result.machine.seq, seqs.at(-1));
    const launch = result.events[1]!.event!;
    assert.equal(launch.source, 'user');
    assert.match(launch.id, /^[0-9A-Z]{26}$/);
    assert.ok(Math.abs(launch.timestamp - Date.now()) < 5000);
    assert.deepEqual(harness.db.pendingOps(), []);
  });

  test('create is idempotent for the same version and refuses another', async () => {
    const s = spec();
    await harness.manager.create(s, false);
    const again = await harness.manager.create(s, false);
    assert.equal(again.machine.state, 'created');
    assert.deepEqual(again.events, []);
    await assert.rejects(harness.manager.create({ ...s, version: '01HZZZZZZZZZZZZZZZZZZZZZZZ' }, false), isCode('failed_precondition'));
  });

  test('a create the driver refuses is rolled back', async () => {
    const s = spec({ meta: { hangar_fake_run_for: 'whenever' } });
    await assert.rejects(harness.manager.create(s, true), isCode('invalid_argument'));
    assert.equal(harness.manager.get(s.id).state, 'destroyed');
    assert.deepEqual(harness.manager.list(), []);
    assert.deepEqual(await harness.driver.inspect(s.id), { state: 'absent' });
    assert.deepEqual(harness.db.pendingOps(), []);
  });

  test('stop uses the request, else stop_config, else SIGINT', async () => {
    const s = spec({ config: { stop_config: { signal: 'SIGTERM' } } });
    await harness.manager.create(s, true);
    const stopped = await harness.manager.stop(s.id);
    assert.equal(stopped.machine.state, 'stopped');
    const exitEvent = stopped.events.at(-1)!.event!.request!.exit_event as Record<string, unknown>;
    assert.equal(exitEvent.signal, SIGNALS.SIGTERM);
    assert.equal(exitEvent.requested_stop, true);
    await harness.manager.start(s.id);
    const byRequest = await harness.manager.stop(s.id, { signal: SIGNALS.SIGQUIT });
    assert.equal((byRequest.events.at(-1)!.event!.request!.exit_event as Record<string, unknown>).signal, SIGNALS.SIGQUIT);
    const plain = spec();
    await harness.manager.create(plain, true);
    await harness.manager.stop(plain.id);
    assert.deepEqual(harness.driver.signalsReceived(plain.id), [SIGNALS.SIGINT]);
  });

  test('stop escalates to SIGKILL after stop_config.timeout', async () => {
    const s = spec({ meta: { hangar_fake_ignore_signals: 'true' }, config: { stop_config: { timeout: '200ms' } } });
    await harness.manager.create(s, true);
    const began = Date.now();
    const result = await harness.manager.stop(s.id);
    assert.ok(Date.now() - began >= 180);
    assert.equal((result.events.at(-1)!.event!.request!.exit_event as Record<string, unknown>).signal, SIGNALS.SIGKILL);
  });

  test('a start that throws leaves the machine failed with the message in the event', async () => {
    const s = spec({ meta: { hangar_fake_start_error: 'exec format error' } });
    const result = await harness.manager.create(s, true);
    assert.equal(result.machine.state, 'failed');
    const failed = result.events.at(-1)!.event!;
    assert.deepEqual({ type: failed.type, status: failed.status, error: failed.request?.error }, { type: 'start', status: 'failed', error: 'exec format error' });
    // failed is recoverable: start is allowed again, destroy works without force.
    assert.equal((await harness.manager.start(s.id)).machine.state, 'failed');
    assert.equal((await harness.manager.destroy(s.id, false)).machine.state, 'destroyed');
  });

  test('operations refused by the state machine answer failed_precondition', async () => {
    const s = spec();
    await harness.manager.create(s, false);
    await assert.rejects(harness.manager.restart(s.id), isCode('failed_precondition'));
    await assert.rejects(harness.manager.exec(s.id, { command: ['true'] }), isCode('failed_precondition'));
    await assert.rejects(harness.manager.ps(s.id), isCode('failed_precondition'));
    await assert.rejects(harness.manager.signal(s.id, 9), isCode('failed_precondition'));
    await harness.manager.start(s.id);
    await assert.rejects(harness.manager.destroy(s.id, false), (err: unknown) => isCode('failed_precondition')(err) && /force/.test((err as Error).message));
    await assert.rejects(harness.manager.start('00000000000000'), isCode('not_found'));
  });

  test('suspend, then start resumes the same run', async () => {
    const s = spec();
    await harness.manager.create(s, true);
    const suspended = await harness.manager.suspend(s.id);
    assert.equal(suspended.machine.state, 'suspended');
    assert.deepEqual(eventKinds(suspended.events), ['suspend:suspended']);
    const pidBefore = (await harness.driver.inspect(s.id));
    assert.equal(pidBefore.state, 'paused');
    assert.equal((await harness.manager.start(s.id)).machine.state, 'started');
  });

  test('restart stops and starts again', async () => {
    const s = spec();
    await harness.manager.create(s, true);
    const result = await harness.manager.restart(s.id, { signal: SIGNALS.SIGTERM });
    assert.deepEqual(result.events.map((e) => e.state), ['restarting', 'started']);
    assert.deepEqual(eventKinds(result.events), ['restart:started']);
  });

  test('update replaces the version and starts again unless start=false', async () => {
    const s = spec();
    await harness.manager.create(s, true);
    const ip = harness.manager.get(s.id).private_ip;
    const v2 = spec({ id: s.id, config: { env: { A: '1' } } });
    const updated = await harness.manager.update(v2, true);
    assert.equal(updated.machine.version, v2.version);
    assert.equal(updated.machine.state, 'started');
    assert.equal(updated.machine.private_ip, ip);
    assert.deepEqual(eventKinds(updated.events), ['update:stopped', 'start:started']);
    const v3 = spec({ id: s.id });
    assert.equal((await harness.manager.update(v3, false)).machine.state, 'stopped');
    const fresh = spec();
    await harness.manager.create(fresh, false);
    assert.equal((await harness.manager.update(spec({ id: fresh.id }), false)).machine.state, 'created');
  });

  test('an update the driver refuses keeps the old version', async () => {
    const s = spec();
    await harness.manager.create(s, false);
    const bad = spec({ id: s.id, meta: { hangar_fake_exit_code: 'lots' } });
    await assert.rejects(harness.manager.update(bad, true), isCode('invalid_argument'));
    const now = harness.manager.get(s.id);
    assert.equal(now.version, s.version);
    assert.equal(now.state, 'created');
  });

  test('destroy with force, then destroy again is idempotent and the machine leaves the list', async () => {
    const s = spec();
    await harness.manager.create(s, true);
    const destroyed = await harness.manager.destroy(s.id, true);
    assert.deepEqual(eventKinds(destroyed.events), ['destroy:destroyed']);
    assert.equal((await harness.manager.destroy(s.id, true)).machine.state, 'destroyed');
    assert.deepEqual(harness.manager.list(), []);
    assert.deepEqual(await harness.driver.inspect(s.id), { state: 'absent' });
  });
});

describe('machine manager: serialization', () => {
  test('two racing starts leave one clean state; the second gets failed_precondition', async () => {
    const s = spec({ meta: { hangar_fake_start_delay: '100ms' } });
    await harness.manager.create(s, false);
    const results = await Promise.allSettled([harness.manager.start(s.id), harness.manager.start(s.id)]);
    assert.equal(results[0].status, 'fulfilled');
    assert.equal(results[1].status, 'rejected');
    assert.ok(isCode('failed_precondition')((results[1] as PromiseRejectedResult).reason));
    assert.equal(harness.manager.get(s.id).state, 'started');
    assert.deepEqual(harness.kinds(s.id), ['launch:created', 'start:started']);
  });

  test('a stop racing a slow start waits for it and wins cleanly', async () => {
    const s = spec({ meta: { hangar_fake_start_delay: '80ms' } });
    await harness.manager.create(s, false);
    const [started, stopped] = await Promise.all([harness.manager.start(s.id), harness.manager.stop(s.id)]);
    assert.equal(started.machine.state, 'started');
    assert.equal(stopped.machine.state, 'stopped');
    assert.deepEqual(harness.seen.filter((e) => e.machine_id === s.id).map((e) => e.state), ['creating', 'created', 'starting', 'started', 'stopping', 'stopped']);
  });

  test('operations on different machines run in parallel', async () => {
    const a = spec({ meta: { hangar_fake_start_delay: '400ms' } });
    const b = spec({ meta: { hangar_fake_start_delay: '400ms' } });
    const began = Date.now();
    await Promise.all([harness.manager.create(a, true), harness.manager.create(b, true)]);
    assert.ok(Date.now() - began < 750, 'both started within about one delay, not two');
  });
});

describe('machine manager: restart policy', () => {
  const exitsOf = (id: string) => harness.seen.filter((e) => e.machine_id === id && e.event?.type === 'exit').map((e) => e.event!);

  test('on-failure (default) restarts a failing workload up to max_retries, then stays stopped', async () => {
    const s = spec({ meta: { hangar_fake_run_for: '20ms', hangar_fake_exit_code: '3' }, config: { restart: { max_retries: 2 } } });
    await harness.manager.create(s, true);
    await until('three exits', () => exitsOf(s.id).length === 3, 5000, 10);
    await until('condition', () => harness.manager.get(s.id).state === 'stopped', 3000, 10);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(harness.kinds(s.id), [
      'launch:created', 'start:started',
      'exit:stopped', 'restart:started',
      'exit:stopped', 'restart:started',
      'exit:stopped',
    ]);
    const exits = exitsOf(s.id);
    assert.deepEqual(exits.map((e) => e.request!.restart_count), [0, 1, 2]);
    assert.deepEqual(exits.map((e) => (e.request!.exit_event as Record<string, unknown>).restarting), [true, true, false]);
    assert.equal((exits[0]!.request!.exit_event as Record<string, unknown>).exit_code, 3);
    assert.equal(exits[0]!.source, 'flyd');
    assert.deepEqual(harness.db.pendingOps(), []);
  });

  test('on-failure does not restart after exit code 0', async () => {
    const s = spec({ meta: { hangar_fake_run_for: '20ms' } });
    await harness.manager.create(s, true);
    await until('condition', () => exitsOf(s.id).length === 1, 3000, 10);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(harness.manager.get(s.id).state, 'stopped');
    assert.deepEqual(harness.kinds(s.id), ['launch:created', 'start:started', 'exit:stopped']);
  });

  test('always restarts after a clean exit; a user stop cancels the pending restart', async () => {
    const s = spec({ meta: { hangar_fake_run_for: '30ms' }, config: { restart: { policy: 'always' } } });
    await harness.manager.create(s, true);
    await until('two restarts', () => harness.kinds(s.id).filter((k) => k === 'restart:started').length >= 2, 5000, 10);
    // Catch it between exit and restart (stopped), or while running: either way it ends stopped.
    await until('an exit', () => harness.manager.get(s.id).state === 'stopped', 3000, 10);
    await harness.manager.stop(s.id);
    const count = harness.seen.length;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(harness.manager.get(s.id).state, 'stopped');
    assert.equal(harness.seen.length, count, 'no restart after the stop');
    assert.deepEqual(harness.db.pendingOps(), []);
  });

  test('policy no stays stopped; oom is reported', async () => {
    const s = spec({ meta: { hangar_fake_run_for: '20ms', hangar_fake_oom: 'true' }, config: { restart: { policy: 'no' } } });
    await harness.manager.create(s, true);
    const [exit] = await until('condition', () => exitsOf(s.id).length === 1 && exitsOf(s.id), 3000, 10);
    assert.equal((exit!.request!.exit_event as Record<string, unknown>).oom_killed, true);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(harness.manager.get(s.id).state, 'stopped');
  });

  test('auto_destroy destroys the machine after its workload exits', async () => {
    const s = spec({ meta: { hangar_fake_run_for: '20ms' }, config: { auto_destroy: true, restart: { policy: 'no' } } });
    await harness.manager.create(s, true);
    await until('condition', () => harness.manager.get(s.id).state === 'destroyed', 3000, 10);
    assert.deepEqual(harness.kinds(s.id), ['launch:created', 'start:started', 'exit:stopped', 'destroy:destroyed']);
    assert.equal(harness.seen.filter((e) => e.event?.type === 'destroy')[0]!.event!.source, 'flyd');
  });

  test('a signal that kills the workload is handled as an exit', async () => {
    const s = spec({ config: { restart: { policy: 'no' } } });
    await harness.manager.create(s, true);
    const result = await harness.manager.signal(s.id, SIGNALS.SIGKILL);
    assert.deepEqual(result.events, []);
    const [exit] = await until('condition', () => exitsOf(s.id).length === 1 && exitsOf(s.id), 3000, 10);
    assert.equal((exit!.request!.exit_event as Record<string, unknown>).signal, SIGNALS.SIGKILL);
    assert.equal(harness.manager.get(s.id).state, 'stopped');
  });

  test('exec and ps reach the driver while started', async () => {
    const s = spec();
    await harness.manager.create(s, true);
    assert.deepEqual(await harness.manager.exec(s.id, { command: ['echo', 'hi'] }), { stdout: 'hi\n', stderr: '', exit_code: 0, exit_signal: 0 });
    assert.equal((await harness.manager.ps(s.id))[0]!.pid, 1);
  });
});
