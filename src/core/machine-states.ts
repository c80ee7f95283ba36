/**
 * The machine state machine from Fly's docs (`machines/machine-states`), as pure functions: which
 * states exist, which are settled, and which user operations each state allows. The API server and
 * the agent both consult it, so an illegal request is refused with the same reason everywhere.
 * @module
 */
import { HangarError } from './errors.js';

export const PERSISTENT_STATES = ['created', 'started', 'stopped', 'suspended', 'failed'] as const;
export const TRANSIENT_STATES = [
  'creating', 'starting', 'stopping', 'restarting', 'suspending', 'destroying', 'updating', 'replacing', 'launch_failed',
] as const;
export const TERMINAL_STATES = ['destroyed'] as const;

export type PersistentState = (typeof PERSISTENT_STATES)[number];
export type TransientState = (typeof TRANSIENT_STATES)[number];
export type MachineState = PersistentState | TransientState | 'destroyed';

export const ALL_STATES: readonly MachineState[] = [...PERSISTENT_STATES, ...TRANSIENT_STATES, ...TERMINAL_STATES];

/** States a `wait` may ask for; `settled` means any persistent or terminal state. */
export const WAITABLE_STATES = ['started', 'stopped', 'suspended', 'destroyed', 'failed', 'created', 'settled'] as const;
export type WaitableState = (typeof WAITABLE_STATES)[number];

/** States the list filter `state=` accepts. */
export const LISTABLE_STATES = ['created', 'started', 'stopped', 'suspended', 'failed', 'destroyed'] as const;

export function isSettled(state: MachineState): boolean {
  return (PERSISTENT_STATES as readonly string[]).includes(state) || state === 'destroyed';
}

export function matchesWaitState(state: MachineState, wanted: WaitableState): boolean {
  return wanted === 'settled' ? isSettled(state) : state === wanted;
}

export type MachineOperation =
  | 'start' | 'stop' | 'restart' | 'suspend' | 'destroy' | 'destroy_force' | 'update'
  | 'signal' | 'exec' | 'ps' | 'cordon' | 'metadata' | 'lease';

/** Where each operation may begin. Everything not listed is refused with `failed_precondition`. */
const ALLOWED_FROM: Record<MachineOperation, readonly MachineState[]> = {
  start: ['created', 'stopped', 'suspended', 'failed'],
  stop: ['created', 'started', 'suspended', 'failed'],
  restart: ['started'],
  suspend: ['started'],
  destroy: ['created', 'stopped', 'suspended', 'failed'],
  destroy_force: ['created', 'started', 'stopped', 'suspended', 'failed', 'starting', 'stopping', 'restarting', 'suspending', 'updating', 'replacing', 'creating', 'launch_failed'],
  update: ['created', 'started', 'stopped', 'suspended', 'failed'],
  signal: ['started'],
  exec: ['started'],
  ps: ['started'],
  cordon: ['created', 'started', 'stopped', 'suspended', 'failed'],
  metadata: ['created', 'started', 'stopped', 'suspended', 'failed', 'starting', 'stopping', 'restarting', 'suspending', 'updating', 'replacing', 'creating'],
  lease: ['created', 'started', 'stopped', 'suspended', 'failed', 'starting', 'stopping', 'restarting', 'suspending', 'updating', 'replacing', 'creating'],
};

const HOW_TO: Partial<Record<MachineOperation, string>> = {
  start: 'stop it first, or wait for it to settle',
  stop: 'it is not running',
  restart: 'start it instead',
  suspend: 'only a started machine can be suspended',
  destroy: 'stop it first, or destroy with force=true',
  signal: 'start it first',
  exec: 'start it first',
  ps: 'start it first',
};

export function canPerform(state: MachineState, op: MachineOperation): boolean {
  return ALLOWED_FROM[op].includes(state);
}

/** Throws `failed_precondition` naming the state and the way out when `op` is not allowed. */
export function assertCanPerform(machineId: string, state: MachineState, op: MachineOperation): void {
  if (canPerform(state, op)) return;
  if (state === 'destroyed') {
    throw new HangarError('failed_precondition', `machine ${machineId} is destroyed; create a new machine instead`);
  }
  const verb = op === 'destroy_force' ? 'destroy' : op;
  const hint = HOW_TO[op] ?? 'wait for it to settle';
  throw new HangarError('failed_precondition', `unable to ${verb} machine ${machineId} from state '${state}': ${hint}`);
}
