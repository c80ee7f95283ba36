import type { CreateMachineRequest } from '../../../api-types/machine.js';
import { createCommand, type CommandContext } from '../../framework.js';
import { applyConfigFlags, parseDurationFlag } from '../../machine-flags.js';
import { waitForState } from '../../wait.js';
import { RUN_FLAGS } from './shared.js';

const RUN_ARGS = {
  image: { description: 'OCI image to run, e.g. nginx or registry.example.com/app:v1', required: true },
  command: { description: 'Command (and arguments) to run instead of the image default', variadic: true },
} as const;

type RunContext = CommandContext<typeof RUN_FLAGS, typeof RUN_ARGS>;

/** Shared by `machine run` and `machine create` (which always skips the launch). */
export async function runMachine(ctx: RunContext, mode: 'run' | 'create'): Promise<number | void> {
  const { args, flags, rest, global, out } = ctx;
  const app = ctx.requireApp();
  const waitMs = parseDurationFlag('wait-timeout', flags['wait-timeout']);
  const config = applyConfigFlags({ image: args.image }, flags);
  const command = [...args.command, ...rest];
  if (command.length) config.init = { ...config.init, cmd: command };
  if (flags.rm) {
    config.auto_destroy = true;
    if (flags.restart === undefined) config.restart = { ...config.restart, policy: 'no' };
  } else if (flags.schedule !== undefined && flags.restart === undefined) {
    config.restart = { ...config.restart, policy: 'on-failure' };
  }
  const skipLaunch = mode === 'create' || flags['skip-launch'];
  const request: CreateMachineRequest = {
    config,
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.region ? { region: flags.region } : {}),
    ...(skipLaunch ? { skip_launch: true } : {}),
  };
  const client = ctx.client();
  const machine = await client.machines.create(app, request);
  const waiting = !skipLaunch && !flags.detach;
  if (!global.json) {
    out.line(`Success! A machine has been successfully ${skipLaunch ? 'created' : 'launched'} in app ${app}`);
    out.line(` Machine ID: ${machine.id}`);
    out.line(` Instance ID: ${machine.instance_id ?? machine.version}`);
    out.line(` State: ${machine.state}`);
  }
  if (!waiting) {
    if (global.json) out.json(machine);
    return;
  }
  if (!global.json) {
    out.line('');
    out.line(' Attempting to start machine...');
    out.line('');
  }
  await waitForState(client, app, machine.id, { state: 'started', version: machine.version, timeoutMs: waitMs });
  if (global.json) return out.json(await client.machines.get(app, machine.id));
  out.line('Machine started, you can connect via the following private ip');
  out.line(`  ${machine.private_ip}`);
}

export const machineRun = createCommand({
  path: ['machine', 'run'],
  description: 'Run a machine',
  long: 'Creates a machine from an image and waits for it to start (unless --detach).',
  examples: [
    'hangar machine run nginx -a web -p 80:80/tcp:http',
    'hangar machine run alpine -a web --rm -- echo hello',
    'hangar machine run redis -a web --vm-size shared-cpu-2x -e MAXMEMORY=100mb',
  ],
  appScoped: true,
  args: RUN_ARGS,
  acceptsRest: 'COMMAND',
  flags: RUN_FLAGS,
  handler: (ctx) => runMachine(ctx, 'run'),
});

