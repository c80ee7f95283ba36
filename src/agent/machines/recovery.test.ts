/**
 * Crash recovery: each test runs an agent, then leaves the data dir as a crash at some point would
 * (a pending op and a transient state written by `AgentDb` directly, exactly what the manager writes
 * before it calls the driver), and starts a new agent on the same dir. "Same driver" = the host kept
 * running and only the agent died; "fresh driver" = the host rebooted.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { MachineState } from '../../core/machine-states.js';
import { FakeDriver } from '../drivers/fake/fake-driver.js';
import { AgentDb, type OpKind } from '../store/agent-db.js';
import { eventKinds, spec, startTestAgent, tempDir, type TestAgent } from '../testing/agent-fixtures.js';
import { until } from '../../testkit/waiting.js';
import type { AgentMachineSpec } from '../../api-types/agent.js';

let tmp: ReturnType<typeof tempDir>;
let running: TestAgent[] = [];
const drivers: FakeDriver[] = [];

beforeEach(() => {
  tmp = tempDir();
  running = [];
});
afterEach(async () => {
  for (const a of running) await a.close();
  for (const d of drivers.splice(0)) await d.close();
  tmp.remove();
});

async function agentOn(driver: FakeDriver, backoff = { initialMs: 20, maxMs: 80 }): Promise<TestAgent> {
  drivers.push(driver);
  const agent = await startTestAgent({ dataDir: tmp.dir, driver, closeDriver: false, restartBackoff: backoff });
  running.push(agent);
  return agent;
}

async function stopAgent(agent: TestAgent): Promise<void> {
  await agent.close();
  running = running.filter((a) => a !== agent);
}

/** Writes what the manager writes right before calling the driver, then "crashes". */
function crashDuring(kind: OpKind, id: string, transient: MachineState, args: Record<string, unknown> = {}, newSpec?: AgentMachineSpec): void {
  const db = new AgentDb(tmp.dir);
  const row = db.getMachine(id);
  const change: Parameters<AgentDb['change']>[0] = { id, state: transient, beginOp: { kind, targetVersion: newSpec?.version ?? row?.version ?? '', args } };
  if (newSpec && !row) change.spec = newSpec;
  db.change(change);
  db.close();
}

function pendingOps(): number {
  const db = new AgentDb(tmp.dir);
  try {
    return db.pendingOps().length;
  } finally {
    db.close();
  }
}

describe('recovery after an agent crash (host kept running)', () => {
  test('start pending and the workload runs → started', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver);
    const s = spec();
    await a.agent.manager.create(s, true);
    await stopAgent(a);
    crashDuring('start', s.id, 'starting');
    const b = await agentOn(driver);
    assert.equal(b.agent.manager.get(s.id).state, 'started');
    assert.deepEqual(b.agent.recovery?.actions, [`${s.id}: start finished`]);
    assert.equal(pendingOps(), 0);
  });

  test('stop pending and the workload still runs → the stop is finished', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver);
    const s = spec();
    await a.agent.manager.create(s, true);
    await stopAgent(a);
    crashDuring('stop', s.id, 'stopping', { signal: 15 });
    const b = await agentOn(driver);
    assert.equal(b.agent.manager.get(s.id).state, 'stopped');
    assert.equal((await driver.inspect(s.id)).state, 'exited');
    assert.deepEqual(driver.signalsReceived(s.id), [15]);
  });

  test('destroy pending → finished, nothing left in the driver', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver);
    const s = spec();
    await a.agent.manager.create(s, true);
    await stopAgent(a);
    crashDuring('destroy', s.id, 'destroying');
    const b = await agentOn(driver);
    assert.equal(b.agent.manager.get(s.id).state, 'destroyed');
    assert.deepEqual(await driver.inspect(s.id), { state: 'absent' });
    assert.deepEqual(b.agent.manager.list(), []);
  });

  test('create pending → rolled back, even if the driver had prepared it', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver);
    await stopAgent(a);
    const s = spec();
    crashDuring('create', s.id, 'creating', { start: true }, s);
    await driver.create(s);
    const b = await agentOn(driver);
    assert.equal(b.agent.manager.get(s.id).state, 'destroyed');
    assert.deepEqual(await driver.inspect(s.id), { state: 'absent' });
    assert.equal(pendingOps(), 0);
  });

  test('update pending → finished with the new version and started as asked', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver);
    const s = spec();
    await a.agent.manager.create(s, true);
    await stopAgent(a);
    const v2 = spec({ id: s.id, config: { env: { NEW: 'yes' } } });
    crashDuring('update', s.id, 'updating', { spec: v2, start: true, prev_state: 'started' });
    const b = await agentOn(driver);
    const m = b.agent.manager.get(s.id);
    assert.deepEqual({ state: m.state, version: m.version }, { state: 'started', version: v2.version });
    assert.equal((await driver.exec(s.id, { command: ['env'], timeoutMs: 1000 })).stdout.includes('NEW=yes'), true);
  });

  test('a workload unknown to the machine table is removed (no orphans)', async () => {
    const driver = new FakeDriver();
    const stray = spec();
    await driver.create(stray);
    await driver.start(stray.id);
    await agentOn(driver);
    assert.deepEqual(await driver.inspect(stray.id), { state: 'absent' });
  });

  test('an exit while the agent was down is recorded and the restart policy applies', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver);
    const s = spec({ meta: { hangar_fake_run_for: '50ms', hangar_fake_exit_code: '1' }, config: { restart: { policy: 'no' } } });
    await a.agent.manager.create(s, true);
    await stopAgent(a); // the new agent is not listening when the exit happens
    await new Promise((r) => setTimeout(r, 100));
    const b = await agentOn(driver);
    assert.equal(b.agent.manager.get(s.id).state, 'stopped');
    const events = b.agent.manager.db.machineEvents(s.id, 1);
    assert.equal(events[0]?.type, 'exit');
    assert.equal((events[0]?.request?.exit_event as Record<string, unknown>).exit_code, 1);
  });

  test('a restart waiting out its backoff at shutdown is resumed', async () => {
    const driver = new FakeDriver();
    const a = await agentOn(driver, { initialMs: 60_000, maxMs: 60_000 });
    const s = spec({ meta: { hangar_fake_run_for: '20ms', hangar_fake_exit_code: '2' } });
    await a.agent.manager.create(s, true);
    await until('the exit', () => a.agent.manager.get(s.id).state === 'stopped', 2000, 10);
    await stopAgent(a);
    assert.equal(pendingOps(), 1, 'the scheduled restart is durable');
    const b = await agentOn(driver);
    assert.equal(b.agent.manager.get(s.id).state, 'started');
    assert.deepEqual(b.agent.manager.db.machineEvents(s.id, 1).map((e) => `${e.type}:${e.status}:${e.source}`), ['restart:started:flyd']);
  });
});

describe('recovery after a host reboot (fresh driver)', () => {
  test('a started machine with policy no ends stopped with an exit event', async () => {
    const a = await agentOn(new FakeDriver());
    const s = spec({ config: { restart: { policy: 'no' } } });
    const idle = spec();
    await a.agent.manager.create(s, true);
    await a.agent.manager.create(idle, false);
    const seqBefore = a.agent.manager.db.lastSeq();
    await stopAgent(a);
    const b = await agentOn(new FakeDriver());
    assert.equal(b.agent.manager.get(s.id).state, 'stopped');
    assert.equal(b.agent.manager.get(idle.id).state, 'created');
    const changes = b.agent.manager.db.eventsAfter(seqBefore);
    assert.deepEqual(eventKinds(changes), ['exit:stopped']);
    assert.ok(changes.every((c) => c.seq > seqBefore), 'seq keeps growing across restarts');
  });

  test('a started machine with the default policy is started again', async () => {
    const a = await agentOn(new FakeDriver());
    const s = spec();
    await a.agent.manager.create(s, true);
    await stopAgent(a);
    const driver = new FakeDriver();
    const b = await agentOn(driver);
    await until('the restart', () => b.agent.manager.get(s.id).state === 'started', 3000, 10);
    assert.equal((await driver.inspect(s.id)).state, 'running');
  });

  test('start pending and nothing runs → stopped, then the restart policy', async () => {
    const a = await agentOn(new FakeDriver());
    const s = spec({ config: { restart: { policy: 'no' } } });
    await a.agent.manager.create(s, false);
    await stopAgent(a);
    crashDuring('start', s.id, 'starting');
    const b = await agentOn(new FakeDriver());
    assert.equal(b.agent.manager.get(s.id).state, 'stopped');
    assert.equal(pendingOps(), 0);
  });

  test('a suspended machine whose snapshot is gone ends stopped', async () => {
    const a = await agentOn(new FakeDriver());
    const s = spec();
    await a.agent.manager.create(s, true);
    await a.agent.manager.suspend(s.id);
    await stopAgent(a);
    const b = await agentOn(new FakeDriver());
    assert.equal(b.agent.manager.get(s.id).state, 'stopped');
    assert.equal((await b.agent.manager.start(s.id)).machine.state, 'started');
  });
});
