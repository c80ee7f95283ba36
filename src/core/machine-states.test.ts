import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HangarError } from './errors.js';
import {
  ALL_STATES, LISTABLE_STATES, type MachineOperation, type MachineState, PERSISTENT_STATES, TERMINAL_STATES, TRANSIENT_STATES,
  WAITABLE_STATES, assertCanPerform, canPerform, isSettled, matchesWaitState,
} from './machine-states.js';

const SETTLED_ALIVE = ['created', 'started', 'stopped', 'suspended', 'failed'] as const;
const BUSY = ['creating', 'starting', 'stopping', 'restarting', 'suspending', 'updating', 'replacing'] as const;

/** The expected table, written out independently of the module: operation → states it may start from. */
const EXPECTED: Record<MachineOperation, readonly MachineState[]> = {
  start: ['created', 'stopped', 'suspended', 'failed'],
  stop: ['created', 'started', 'suspended', 'failed'],
  restart: ['started'],
  suspend: ['started'],
  destroy: ['created', 'stopped', 'suspended', 'failed'],
  destroy_force: [...SETTLED_ALIVE, ...BUSY, 'launch_failed'],
  update: [...SETTLED_ALIVE],
  signal: ['started'],
  exec: ['started'],
  ps: ['started'],
  cordon: [...SETTLED_ALIVE],
  metadata: [...SETTLED_ALIVE, ...BUSY],
  lease: [...SETTLED_ALIVE, ...BUSY],
};
const OPERATIONS = Object.keys(EXPECTED) as MachineOperation[];

/** The fix each refusal names (from a settled, non-destroyed state). */
const HINTS: Record<MachineOperation, string> = {
  start: 'stop it first, or wait for it to settle',
  stop: 'it is not running',
  restart: 'start it instead',
  suspend: 'only a started machine can be suspended',
  destroy: 'stop it first, or destroy with force=true',
  destroy_force: 'wait for it to settle',
  update: 'wait for it to settle',
  signal: 'start it first',
  exec: 'start it first',
  ps: 'start it first',
  cordon: 'wait for it to settle',
  metadata: 'wait for it to settle',
  lease: 'wait for it to settle',
};

describe('machine states', () => {
  test('the state lists are disjoint and complete', () => {
    const all = [...PERSISTENT_STATES, ...TRANSIENT_STATES, ...TERMINAL_STATES];
    assert.equal(new Set(all).size, all.length);
    assert.deepEqual([...ALL_STATES].sort(), [...all].sort());
    assert.equal(ALL_STATES.length, 15);
  });

  test('settled means persistent or destroyed', () => {
    for (const state of ALL_STATES) {
      const expected = (PERSISTENT_STATES as readonly string[]).includes(state) || state === 'destroyed';
      assert.equal(isSettled(state), expected, state);
    }
  });

  test('wait matches the exact state, or any settled state for "settled"', () => {
    for (const state of ALL_STATES) {
      for (const wanted of WAITABLE_STATES) {
        const expected = wanted === 'settled' ? isSettled(state) : state === wanted;
        assert.equal(matchesWaitState(state, wanted), expected, `${state} vs ${wanted}`);
      }
    }
  });

  test('listable states are settled states', () => {
    for (const state of LISTABLE_STATES) assert.ok(isSettled(state), state);
  });
});

describe('which operations each state allows', () => {
  for (const op of OPERATIONS) {
    test(op, () => {
      for (const state of ALL_STATES) {
        const allowed = EXPECTED[op].includes(state);
        assert.equal(canPerform(state, op), allowed, `${op} from ${state}`);
        if (allowed) assert.doesNotThrow(() => assertCanPerform('3d8d9011a14589', state, op));
        else assert.throws(() => assertCanPerform('3d8d9011a14589', state, op), HangarError);
      }
    });
  }

  test('nothing is allowed from destroyed', () => {
    for (const op of OPERATIONS) assert.equal(canPerform('destroyed', op), false, op);
  });

  test('launch_failed allows only a forced destroy', () => {
    for (const op of OPERATIONS) assert.equal(canPerform('launch_failed', op), op === 'destroy_force', op);
  });

  test('destroying allows nothing', () => {
    for (const op of OPERATIONS) assert.equal(canPerform('destroying', op), false, op);
  });
});

describe('assertCanPerform messages', () => {
  test('name the operation, the machine, the state and the fix', () => {
    for (const op of OPERATIONS) {
      for (const state of ALL_STATES) {
        if (canPerform(state, op) || state === 'destroyed') continue;
        const verb = op === 'destroy_force' ? 'destroy' : op;
        assert.throws(
          () => assertCanPerform('3d8d9011a14589', state, op),
          (err: unknown) => {
            assert.ok(err instanceof HangarError);
            assert.equal(err.code, 'failed_precondition');
            assert.equal(err.httpStatus, 412);
            assert.equal(err.message, `unable to ${verb} machine 3d8d9011a14589 from state '${state}': ${HINTS[op]}`);
            return true;
          },
          `${op} from ${state}`,
        );
      }
    }
  });

  test('a destroyed machine says so and tells to create a new one', () => {
    for (const op of OPERATIONS) {
      assert.throws(() => assertCanPerform('e286591c3d6d68', 'destroyed', op), {
        name: 'HangarError',
        code: 'failed_precondition',
        message: 'machine e286591c3d6d68 is destroyed; create a new machine instead',
      });
    }
  });

  test('examples read well', () => {
    assert.throws(() => assertCanPerform('m1', 'started', 'start'), {
      message: "unable to start machine m1 from state 'started': stop it first, or wait for it to settle",
    });
    assert.throws(() => assertCanPerform('m1', 'started', 'destroy'), {
      message: "unable to destroy machine m1 from state 'started': stop it first, or destroy with force=true",
    });
    assert.throws(() => assertCanPerform('m1', 'destroying', 'destroy_force'), {
      message: "unable to destroy machine m1 from state 'destroying': wait for it to settle",
    });
  });
});
