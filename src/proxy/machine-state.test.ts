import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { MachineState, SlotAllocator } from './machine-state.js';

test('loads add up over threads; each thread leaves only its own', () => {
  const layout = MachineState.create(3, 16);
  const [a, b, c] = [0, 1, 2].map((t) => new MachineState(layout, t));
  assert.ok(a!.enter(5) && a!.enter(5) && b!.enter(5) && c!.enter(7));
  assert.equal(c!.load(5), 3);
  assert.equal(a!.ownLoad(5), 2);
  assert.equal(b!.leave(5), 0);
  assert.equal(a!.load(5), 2);
  assert.equal(a!.load(7), 1);
  a!.clearThread(0);
  assert.equal(b!.load(5), 0, 'a dead thread leaves nothing in flight');
  assert.throws(() => new MachineState(layout, 3), /thread index 3 is not in 0\.\.2/);
});

test('draining: refused while any thread has load; a drained machine takes no new load', () => {
  const layout = MachineState.create(2, 8);
  const [main, other] = [new MachineState(layout, 0), new MachineState(layout, 1)];
  assert.ok(other.enter(1));
  assert.equal(main.tryDrain(1), false, 'load on the other thread');
  assert.equal(main.draining(1), false, 'a refused drain leaves no flag behind');
  other.leave(1);
  assert.equal(main.tryDrain(1), true);
  assert.equal(other.draining(1), true);
  assert.equal(other.enter(1), false);
  assert.equal(main.load(1), 0, 'a refused enter counts nothing');
  assert.equal(main.tryDrain(1), false, 'already draining');
  main.endDrain(1);
  assert.ok(other.enter(1));
  main.setStarting(2, true);
  assert.equal(main.tryDrain(2), false, 'a machine being started is not drained');
  assert.equal(other.starting(2), true);
});

test('overrides, failures and last activity are seen by every thread', () => {
  const layout = MachineState.create(2, 8);
  const [main, other] = [new MachineState(layout, 0), new MachineState(layout, 1)];
  assert.equal(other.override(3), undefined);
  main.setOverride(3, 'suspended', 2000, 1000);
  assert.deepEqual(other.override(3), { state: 'suspended', until: 2000, setAt: 1000 });
  main.setStarting(3, true);
  main.setOverride(3, 'started', 3000, 1500);
  assert.deepEqual(other.override(3), { state: 'started', until: 3000, setAt: 1500 });
  assert.equal(other.starting(3), true, 'setting an override keeps the other flags');
  main.clearOverride(3);
  assert.equal(other.hasOverride(3), false);
  main.setFailedUntil(3, 42);
  main.setLastActive(3, 7);
  assert.equal(other.failedUntil(3), 42);
  assert.equal(other.lastActive(3), 7);
  main.reset(3);
  assert.equal(other.failedUntil(3) + other.lastActive(3), 0);
  assert.equal(other.starting(3), false);
});

test('slots: one per machine, reused only after the quarantine and at zero load, none past capacity', () => {
  let now = 0;
  const state = new MachineState(MachineState.create(1, 2));
  const slots = new SlotAllocator(state, () => now);
  const a = slots.assign('a')!;
  assert.equal(slots.assign('a'), a);
  const b = slots.assign('b')!;
  assert.notEqual(a, b);
  assert.equal(slots.assign('c'), undefined, 'capacity 2');
  assert.ok(state.enter(a));
  slots.retire('a');
  now = 5_000;
  assert.equal(slots.assign('c'), undefined, 'quarantined');
  now = 20_000;
  assert.equal(slots.assign('c'), undefined, 'still has load');
  state.leave(a);
  state.setLastActive(a, 99);
  assert.equal(slots.assign('c'), a);
  assert.equal(state.lastActive(a), 0, 'a reused slot starts clean');
});

test('no thread ever holds load on a machine autostop drained (two threads racing on Atomics)', { timeout: 60_000 }, async () => {
  const layout = MachineState.create(2, 4);
  // holding[0] is 1 while the other thread holds a successful enter on slot 0; holding[1] is 1 once it has begun, 2 when done.
  const holding = new Int32Array(new SharedArrayBuffer(8));
  const rounds = 200_000;
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     import(workerData.module).then(({ MachineState }) => {
       const s = new MachineState(workerData.layout, 1);
       const holding = new Int32Array(workerData.holding);
       let entered = 0;
       Atomics.store(holding, 1, 1);
       for (let i = 0; i < workerData.rounds; i++) {
         if (!s.enter(0)) continue;
         entered++;
         Atomics.store(holding, 0, 1);
         Atomics.store(holding, 0, 0);
         s.leave(0);
       }
       Atomics.store(holding, 1, 2);
       parentPort.postMessage(entered);
     });`,
    { eval: true, workerData: { module: new URL('./machine-state.js', import.meta.url).href, layout, holding: holding.buffer, rounds } },
  );
  const entered = new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const main = new MachineState(layout, 0);
  let drained = 0;
  let violations = 0;
  // Spin on this thread as the other does (bounded in time): drains interleave with its enters.
  const deadline = Date.now() + 30_000;
  while (Atomics.load(holding, 1) !== 2 && Date.now() < deadline) {
    if (Atomics.load(holding, 1) === 0) continue;
    if (main.tryDrain(0)) {
      drained++;
      if (Atomics.load(holding, 0) === 1) violations++;
      main.endDrain(0);
    }
  }
  const n = await entered;
  await worker.terminate();
  assert.equal(violations, 0);
  assert.ok(n > 0 && drained > 0, `both sides ran (entered ${n}, drained ${drained})`);
  assert.equal(main.load(0), 0);
});

test('a limit counts every thread: the last place goes to one of two threads', () => {
  const layout = MachineState.create(2, 4);
  const [a, b] = [new MachineState(layout, 0), new MachineState(layout, 1)];
  assert.ok(a.enter(2, 2));
  assert.ok(b.enter(2, 2));
  assert.equal(a.enter(2, 2), false, 'two in flight over both threads: full');
  assert.equal(b.load(2), 2, 'a refused enter counts nothing');
  b.leave(2);
  assert.ok(a.enter(2, 2));
});
