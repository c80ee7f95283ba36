import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide, type Candidate } from './balancer.js';

const m = (id: string, o: Partial<Candidate> = {}): Candidate => ({
  id, region: 'lcl', state: 'started', routable: true, startable: true, starting: false, load: 0, softLimit: 2, hardLimit: 4, ...o,
});
const opts = { regionOrder: ['lcl', 'ams'], autostart: true, random: () => 0.99 };

const cases: { name: string; in: Candidate[]; autostart?: boolean; want: unknown }[] = [
  { name: 'least loaded under soft', in: [m('a', { load: 1 }), m('b', { load: 0 })], want: { kind: 'route', id: 'b' } },
  { name: 'closest region wins over less loaded far one', in: [m('a', { load: 1 }), m('b', { region: 'ams' })], want: { kind: 'route', id: 'a' } },
  { name: 'soft limit does not move traffic across regions; a start is kicked off', in: [m('a', { load: 3 }), m('b', { region: 'ams' }), m('s', { state: 'stopped' })], want: { kind: 'route', id: 'a' } },
  { name: 'over soft everywhere: route under hard and start another', in: [m('a', { load: 2 }), m('s', { state: 'stopped' })], want: { kind: 'route', id: 'a', alsoStart: 's' } },
  { name: 'local at hard limit: cross region', in: [m('a', { load: 4 }), m('b', { region: 'ams', load: 3 })], want: { kind: 'route', id: 'b' } },
  { name: 'all at hard: start a stopped one', in: [m('a', { load: 4 }), m('s', { state: 'stopped' })], want: { kind: 'start', id: 's' } },
  { name: 'all at hard, nothing to start: queue', in: [m('a', { load: 4 })], want: { kind: 'queue', reason: 'all 1 started machine(s) are at their hard limit' } },
  { name: 'none started: suspended before stopped', in: [m('s', { state: 'stopped' }), m('p', { state: 'suspended' })], want: { kind: 'start', id: 'p' } },
  { name: 'none started: nearest region first', in: [m('far', { state: 'suspended', region: 'ams' }), m('near', { state: 'stopped' })], want: { kind: 'start', id: 'near' } },
  { name: 'a start in flight is joined', in: [m('s', { state: 'stopped' }), m('t', { state: 'stopped', starting: true, region: 'ams' })], want: { kind: 'start', id: 't' } },
  { name: 'unhealthy/cordoned machines get no traffic', in: [m('a', { routable: false }), m('s', { state: 'stopped' })], want: { kind: 'start', id: 's' } },
  { name: 'autostart off', in: [m('s', { state: 'stopped', startable: false })], autostart: false, want: { kind: 'unavailable', reason: 'no machine is started and autostart is off (1 stopped or suspended)' } },
  { name: 'failed starts', in: [m('s', { state: 'stopped', startable: false })], want: { kind: 'unavailable', reason: 'no machine could be started (every start failed, or the machines are cordoned or on an unreachable host)' } },
  { name: 'stopping machine: wait for it', in: [m('s', { state: 'stopping', routable: false })], want: { kind: 'queue', reason: 'waiting for 1 machine(s) that are stopping' } },
  { name: 'no machines', in: [], want: { kind: 'unavailable', reason: 'the app has no machines' } },
];

for (const c of cases) {
  test(`balancer: ${c.name}`, () => {
    assert.deepEqual(decide(c.in, { ...opts, autostart: c.autostart ?? true }), c.want);
  });
}

test('balancer: ties are spread', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const d = decide([m('a'), m('b'), m('c')], { regionOrder: ['lcl'], autostart: true });
    if (d.kind === 'route') seen.add(d.id);
  }
  assert.deepEqual([...seen].sort(), ['a', 'b', 'c']);
});
