import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideAutostop, type AutostopMachine } from './autostop.js';

const m = (id: string, o: Partial<AutostopMachine> = {}): AutostopMachine => ({
  id, app: 'web', region: 'lcl', state: 'started', autostop: 'stop', minRunning: 0, load: 0, softLimit: 10, idleMs: 60_000, ...o,
});
const opts = { primaryRegion: () => 'lcl', minIdleMs: 1000 };

const cases: { name: string; in: AutostopMachine[]; want: string[] }[] = [
  { name: 'single idle machine stops', in: [m('a')], want: ['a:stop'] },
  { name: 'single busy machine stays', in: [m('a', { load: 1 })], want: [] },
  { name: 'recently active machine stays', in: [m('a', { idleMs: 10 })], want: [] },
  { name: 'autostop off', in: [m('a', { autostop: 'off' })], want: [] },
  { name: 'suspend', in: [m('a', { autostop: 'suspend' })], want: ['a:suspend'] },
  { name: 'excess: two idle of three light machines → stop one (one per pass)', in: [m('a', { load: 1 }), m('b'), m('c')], want: ['b:stop'] },
  { name: 'no excess: both over soft', in: [m('a', { load: 10 }), m('b', { load: 10 })], want: [] },
  { name: 'excess 1 with one over soft of three', in: [m('a', { load: 10 }), m('b', { idleMs: 5000 }), m('c', { idleMs: 9000 })], want: ['c:stop'] },
  { name: 'never a machine with traffic in flight', in: [m('a', { load: 1 }), m('b', { load: 1 })], want: [] },
  { name: 'min_machines_running in the primary region', in: [m('a', { minRunning: 1 })], want: [] },
  { name: 'min_machines_running does not apply outside the primary region', in: [m('a', { minRunning: 1, region: 'ams' })], want: ['a:stop'] },
  { name: 'min 1 of 2 in primary: one may stop', in: [m('a', { minRunning: 1 }), m('b', { minRunning: 1, idleMs: 90_000 })], want: ['b:stop'] },
  { name: 'one per region per pass', in: [m('a'), m('b', { region: 'ams' })], want: ['a:stop', 'b:stop'] },
  { name: 'stopped machines ignored', in: [m('a', { state: 'stopped' })], want: [] },
];

for (const c of cases) {
  test(`autostop: ${c.name}`, () => {
    assert.deepEqual(decideAutostop(c.in, opts).map((a) => `${a.id}:${a.action}`).sort(), c.want);
  });
}
