import { createCommand } from '../../framework.js';
import { parseDurationFlag } from '../../machine-flags.js';
import { waitForState } from '../../wait.js';
import { CliError } from '../../errors.js';

export const machineClone = createCommand({
  path: ['machine', 'clone'],
  description: "Create a new machine with an existing machine's config",
  appScoped: true,
  args: { id: { description: 'Machine ID to clone', required: true } },
  flags: {
    region: { type: 'string', short: 'r', description: 'Region for the new machine (default: the source region)', valueName: 'REGION' },
    name: { type: 'string', description: 'Name for the new machine', valueName: 'NAME' },
    detach: { type: 'boolean', short: 'd', description: 'Do not wait for the new machine to start' },
    'wait-timeout': { type: 'string', description: 'How long to wait for the new machine to start', valueName: 'DURATION', default: '5m' },
  },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const waitMs = parseDurationFlag('wait-timeout', flags['wait-timeout']);
    const api = client();
    const source = await api.machines.get(app, args.id);
    if (!source.config) throw new CliError('unavailable', `machine ${args.id} (app ${app}) has no readable config (host status ${source.host_status}); try again later`);
    const region = flags.region ?? source.region;
    if (!global.json) {
      out.line(`Cloning machine ${args.id} into region ${region}`);
      out.line(`  Provisioning a new machine with image ${source.config.image}...`);
    }
    const clone = await api.machines.create(app, {
      config: source.config,
      region,
      ...(flags.name ? { name: flags.name } : {}),
    });
    if (!global.json) out.line(`  Machine ${clone.id} has been created...`);
    if (!flags.detach) {
      if (!global.json) out.line(`  Waiting for machine ${clone.id} to start...`);
      await waitForState(api, app, clone.id, { state: 'started', version: clone.version, timeoutMs: waitMs });
    }
    if (global.json) return out.json(clone);
    out.line('Machine has been successfully cloned!');
  },
});
