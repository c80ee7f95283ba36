/**
 * Signal names and numbers (Linux x86-64). Fly's API names signals (`"SIGTERM"`), flyctl's
 * `machine kill` sends numbers (`{"signal": 9}`); Hangar accepts both.
 * @module
 */
export const SIGNALS = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8,
  SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15,
} as const;
export type SignalName = keyof typeof SIGNALS;

/** Signals `stop` and `stop_config` accept (Fly's StopRequest enum). */
export const STOP_SIGNALS: readonly SignalName[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGUSR1', 'SIGUSR2', 'SIGTERM'];
/** Signals `signal` accepts (Fly's SignalRequest enum). */
export const USER_SIGNALS: readonly SignalName[] = [
  'SIGABRT', 'SIGALRM', 'SIGFPE', 'SIGHUP', 'SIGILL', 'SIGINT', 'SIGKILL', 'SIGPIPE', 'SIGQUIT', 'SIGSEGV', 'SIGTERM', 'SIGTRAP', 'SIGUSR1', 'SIGUSR2',
];

/** Resolves `"SIGTERM"`, `"TERM"`, `15` or `"15"` to a signal name from `allowed`; undefined if none. */
export function resolveSignal(value: unknown, allowed: readonly SignalName[] = USER_SIGNALS): SignalName | undefined {
  let name: string | undefined;
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value))) {
    const n = Number(value);
    name = Object.entries(SIGNALS).find(([, num]) => num === n)?.[0];
  } else if (typeof value === 'string') {
    const upper = value.trim().toUpperCase();
    name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  }
  return name !== undefined && (allowed as readonly string[]).includes(name) ? (name as SignalName) : undefined;
}

export function signalNumber(name: SignalName): number {
  return SIGNALS[name];
}

export function signalName(num: number): SignalName | undefined {
  return Object.entries(SIGNALS).find(([, n]) => n === num)?.[0] as SignalName | undefined;
}
