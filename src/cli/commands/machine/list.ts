import { createCommand } from '../../framework.js';
import { imageOf } from './shared.js';

export const machineList = createCommand({
  path: ['machine', 'list'],
  aliases: ['ls'],
  description: "List an app's machines",
  appScoped: true,
  flags: {
    quiet: { type: 'boolean', short: 'q', description: 'Only print machine IDs' },
    state: { type: 'string', description: 'Only machines in these states (comma list)', valueName: 'STATES' },
    region: { type: 'string', short: 'r', description: 'Only machines in this region', valueName: 'REGION' },
    all: { type: 'boolean', description: 'Include destroyed machines' },
  },
  async handler({ flags, global, out, client, requireApp }) {
    const app = requireApp();
    const machines = await client().machines.list(app, {
      ...(flags.state ? { state: flags.state } : {}),
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags.all ? { include_deleted: true } : {}),
    });
    if (global.json) return out.json(machines);
    if (flags.quiet) {
      for (const machine of machines) out.line(machine.id);
      return;
    }
    if (machines.length === 0) {
      out.line(`No machines are available on this app ${app}`);
      return;
    }
    out.line(`${machines.length} machine${machines.length === 1 ? ' has' : 's have'} been retrieved from app ${app}.`);
    out.line('');
    out.table(
      ['ID', 'Name', 'State', 'Region', 'Image', 'IP Address', 'Created', 'Last Updated'],
      machines.map((m) => [m.id, m.name, m.state, m.region, imageOf(m), m.private_ip, m.created_at, m.updated_at]),
    );
  },
});
