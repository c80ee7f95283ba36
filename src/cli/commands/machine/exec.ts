import { createCommand } from '../../framework.js';
import { parsePositiveInt, shellWords } from '../../machine-flags.js';
import { UsageError } from '../../errors.js';

export const machineExec = createCommand({
  path: ['machine', 'exec'],
  description: 'Run a command inside a machine',
  long: "Prints the command's stdout and stderr and exits with its exit code. One argument is split like a shell would; several are passed as they are.",
  examples: ["hangar machine exec 3d8d413b29d089 'ls -la /' -a web", 'hangar machine exec 3d8d413b29d089 -a web -- cat /etc/hostname'],
  appScoped: true,
  args: {
    id: { description: 'Machine ID', required: true },
    command: { description: 'Command to run', variadic: true },
  },
  acceptsRest: 'COMMAND',
  flags: {
    timeout: { type: 'string', description: 'Seconds to wait for the command', valueName: 'SECONDS' },
  },
  hints: {
    failed_precondition: 'Commands run only in a started machine; start it with `hangar machine start ID -a APP`',
    timeout: 'Pass a longer --timeout SECONDS (up to 3600), or start long jobs in the background',
  },
  async handler({ args, flags, rest, global, out, io, client, requireApp }) {
    const app = requireApp();
    const words = [...args.command, ...rest];
    if (words.length === 0) throw new UsageError("missing COMMAND: usage `hangar machine exec ID 'command'`");
    const command = words.length === 1 ? shellWords('command', words[0]!) : words;
    if (command.length === 0) throw new UsageError('the command is empty');
    const timeout = flags.timeout === undefined ? undefined : parsePositiveInt('timeout', flags.timeout, 'a number of seconds');
    const result = await client().machines.exec(app, args.id, { command, ...(timeout ? { timeout } : {}) });
    if (global.json) out.json(result);
    else {
      if (result.stdout) io.stdout.write(result.stdout);
      if (result.stderr) io.stderr.write(result.stderr);
    }
    if (result.exit_signal) return 128 + result.exit_signal;
    return result.exit_code ?? 0;
  },
});
