/**
 * `hangar host setup` and `hangar host check`: prepare this machine to run Hangar's machines
 * (Debian packages, the hybrid-cgroup fix crun needs, sysctls) and report what is missing.
 * What each item is and why: docs/host.md.
 * @module
 */
import { parseArgs } from 'node:util';
import { HangarError } from '../core/errors.js';
import { realExecutor, realProbes } from './probes.js';
import { HOST_REQUIREMENTS } from './requirements.js';
import { checkHost, formatCheck, setupHost } from './runner.js';

export interface HostIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

const HELP = `Usage: hangar host <command>

Commands:
  setup     Install the host packages, apply the cgroup fix and sysctls (idempotent; needs root)
  check     Report each host requirement and how to fix it; exit 1 if a required one is missing

Flags:
  --json    (check) print the report as JSON
`;

export async function runHostMain(args: string[], io: HostIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  let flags: { json?: boolean | undefined };
  try {
    flags = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new HangarError('invalid_argument', `hangar host ${command}: ${(err as Error).message.split('\n')[0]}; run \`hangar host --help\``);
  }
  switch (command) {
    case 'check': {
      const report = checkHost(HOST_REQUIREMENTS, realProbes());
      io.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheck(report));
      return report.ok ? 0 : 1;
    }
    case 'setup': {
      if (flags.json) throw new HangarError('invalid_argument', 'hangar host setup: --json is only for `hangar host check`');
      if (process.getuid?.() !== 0) {
        io.stderr.write(
          'hangar host setup must run as root: it installs Debian packages, mounts a cgroup hierarchy and sets sysctls. ' +
            'Run `sudo hangar host setup`, or `hangar host check` to see what is missing without changing anything.\n',
        );
        return 1;
      }
      io.stdout.write('hangar host setup\n');
      const outcome = await setupHost(HOST_REQUIREMENTS, realProbes, realExecutor(), (line) => io.stdout.write(`${line}\n`));
      return outcome.ok ? 0 : 1;
    }
    default:
      throw new HangarError('invalid_argument', `hangar host: unknown command ${JSON.stringify(command)}; commands: setup, check`);
  }
}
