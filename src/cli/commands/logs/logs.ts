import type { LogEntry } from '../../../api-types/machine.js';
import { createCommand } from '../../framework.js';
import { UsageError } from '../../errors.js';

/** flyctl's log line: `2024-01-02T03:04:05Z app[3d8d413b29d089] ams [info] message`. */
export function formatLogLine(entry: LogEntry): string {
  const level = entry.stream === 'stderr' ? 'err' : 'info';
  return `${entry.timestamp} app[${entry.machine_id}] ${entry.region} [${level}] ${entry.message}`;
}

export const logs = createCommand({
  path: ['logs'],
  description: "Show an app's machine logs",
  long: 'Prints the newest lines of every machine of the app (or one with --machine), merged by time, then follows new lines until Ctrl-C. --no-tail prints what is there and exits.',
  examples: ['hangar logs -a web', 'hangar logs -a web --machine 3d8d413b29d089 --no-tail', 'hangar logs -a web -n 500 --json'],
  appScoped: true,
  flags: {
    machine: { type: 'string', description: 'Only this machine', valueName: 'ID' },
    'no-tail': { type: 'boolean', description: 'Print the buffered lines and exit instead of following' },
    lines: { type: 'string', short: 'n', description: 'How many recent lines to print first (default 100)', valueName: 'N' },
  },
  hints: { not_found: 'Check the app and machine with `hangar machine list -a APP`' },
  async handler({ flags, global, out, client, requireApp }) {
    const app = requireApp();
    const tail = flags.lines === undefined ? 100 : Number(flags.lines);
    if (!Number.isInteger(tail) || tail < 0 || tail > 10_000) {
      throw new UsageError(`--lines: expected a whole number from 0 to 10000, got ${JSON.stringify(flags.lines)}`);
    }
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    try {
      for await (const entry of client().logs(app, { machine: flags.machine, tail, follow: !flags['no-tail'], signal: abort.signal })) {
        out.line(global.json ? JSON.stringify(entry) : formatLogLine(entry));
      }
    } finally {
      process.off('SIGINT', stop);
    }
  },
});
