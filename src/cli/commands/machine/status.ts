import type { MachineEvent } from '../../../api-types/machine.js';
import { createCommand } from '../../framework.js';
import { eventInfo, imageOf, processGroupOf, timestampOf } from './shared.js';

export const machineStatus = createCommand({
  path: ['machine', 'status'],
  description: 'Show the status of a machine and its recent events',
  appScoped: true,
  args: { id: { description: 'Machine ID', required: true } },
  flags: {
    'display-config': { type: 'boolean', short: 'd', description: "Print the machine's config as JSON" },
  },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const api = client();
    const machine = await api.machines.get(app, args.id);
    if (global.json) return out.json(machine);
    let events: MachineEvent[] = machine.events ?? [];
    if (!machine.events) events = await api.machines.events(app, args.id, { limit: 10 });
    const config = machine.config ?? machine.incomplete_config;
    out.line(`Machine ID: ${machine.id}`);
    out.line(`Instance ID: ${machine.instance_id ?? machine.version}`);
    out.line(`State: ${machine.state}`);
    out.line(`HostStatus: ${machine.host_status ?? 'ok'}`);
    if (machine.cordoned) out.line('Cordoned: true');
    out.line('');
    out.vertical(
      [
        ['ID', machine.id],
        ['Instance ID', machine.instance_id ?? machine.version],
        ['State', machine.state],
        ['Image', imageOf(machine)],
        ['Name', machine.name],
        ['Private IP', machine.private_ip],
        ['Region', machine.region],
        ['Process Group', processGroupOf(machine)],
        ['CPU Kind', config?.guest?.cpu_kind ?? 'shared'],
        ['vCPUs', config?.guest?.cpus ?? 1],
        ['Memory', config?.guest?.memory_mb ?? 256],
        ['Created', machine.created_at],
        ['Updated', machine.updated_at],
        ['Entrypoint', (config?.init?.entrypoint ?? []).join(' ')],
        ['Command', (config?.init?.exec ?? config?.init?.cmd ?? []).join(' ')],
        ...(config?.mounts?.[0] ? [['Volume', config.mounts[0].volume] as [string, string]] : []),
      ],
      'VM',
    );
    out.line('');
    if (machine.checks?.length) {
      const passing = machine.checks.filter((c) => c.status === 'passing').length;
      out.table(
        ['Name', 'Status', 'Last Updated', 'Output'],
        machine.checks.map((c) => [c.name, c.status, c.updated_at, c.output]),
        `Checks [${passing}/${machine.checks.length}]`,
      );
      out.line('');
    }
    out.table(
      ['State', 'Event', 'Source', 'Timestamp', 'Info'],
      events.map((e) => [e.status, e.type, e.source, timestampOf(e.timestamp), eventInfo(e)]),
      'Event Logs',
    );
    if (flags['display-config']) {
      out.line('');
      out.line('Config:');
      out.json(config ?? {});
    }
  },
});
