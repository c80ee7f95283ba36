import { createCommand } from '../../framework.js';
import { CONFIG_FLAGS, applyConfigFlags, parseDurationFlag, shellWords } from '../../machine-flags.js';
import { jsonLineDiff } from '../../diff.js';
import { waitForState } from '../../wait.js';
import { CliError } from '../../errors.js';

export const machineUpdate = createCommand({
  path: ['machine', 'update'],
  description: "Update a machine's configuration",
  long: 'Reads the current config, applies the flags, shows the changes and posts the full config back with current_version (a concurrent change fails instead of being overwritten). A started machine restarts with the new config.',
  examples: ['hangar machine update 3d8d413b29d089 -a web --image nginx:1.27 -y', 'hangar machine update 3d8d413b29d089 -a web --vm-memory 512 -e LOG_LEVEL=debug -y'],
  appScoped: true,
  args: { id: { description: 'Machine ID', required: true } },
  flags: {
    ...CONFIG_FLAGS,
    image: { type: 'string', short: 'i', description: 'New image', valueName: 'IMAGE' },
    command: { type: 'string', short: 'C', description: "New command ('bin/server --port 80')", valueName: 'COMMAND' },
    'skip-start': { type: 'boolean', description: 'Do not start the machine after the update' },
    yes: { type: 'boolean', short: 'y', description: 'Apply without asking', aliases: ['auto-confirm'] },
    detach: { type: 'boolean', short: 'd', description: 'Do not wait for the machine to start' },
    'wait-timeout': { type: 'string', description: 'How long to wait for the machine to start', valueName: 'DURATION', default: '5m' },
  },
  hints: { version_conflict: 'The machine changed while this update was prepared; run the command again' },
  async handler({ args, flags, global, out, client, requireApp, confirm }) {
    const app = requireApp();
    const waitMs = parseDurationFlag('wait-timeout', flags['wait-timeout']);
    const api = client();
    const machine = await api.machines.get(app, args.id);
    const current = machine.config;
    if (!current) throw new CliError('unavailable', `machine ${args.id} (app ${app}) has no readable config (host status ${machine.host_status}); try again later`);
    const config = applyConfigFlags(current, flags);
    if (flags.image !== undefined) config.image = flags.image;
    if (flags.command !== undefined) config.init = { ...config.init, cmd: shellWords('--command', flags.command) };
    const diff = jsonLineDiff(current, config);
    if (diff.length === 0 && !flags['skip-start']) {
      if (global.json) return out.json(machine);
      out.line(`No changes to apply to machine ${args.id} (${app})`);
      return;
    }
    if (!global.json) {
      out.line(`Configuration changes to be applied to machine: ${args.id} (${app})`);
      out.line('');
      for (const line of diff) out.line(line);
      out.line('');
    }
    if (!flags.yes) {
      const answer = await confirm('Apply changes?');
      if (answer === false) {
        out.line('Not applying changes');
        return 1;
      }
    }
    const updated = await api.machines.update(app, args.id, {
      config,
      current_version: machine.version,
      ...(flags['skip-start'] ? { skip_launch: true } : {}),
    });
    if (!global.json) out.line(`Updating machine ${args.id}`);
    if (!flags['skip-start'] && !flags.detach && machine.state === 'started') {
      if (!global.json) out.line(`  Waiting for ${args.id} to have state: started`);
      await waitForState(api, app, args.id, { state: 'started', version: updated.version, timeoutMs: waitMs });
    }
    if (global.json) return out.json(updated);
    out.line(`Machine ${args.id} updated successfully!`);
  },
});
