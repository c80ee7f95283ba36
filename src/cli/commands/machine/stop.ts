import { createCommand } from '../../framework.js';
import { parseStopFlags } from '../../machine-flags.js';
import { waitForState } from '../../wait.js';

export const machineStop = createCommand({
  path: ['machine', 'stop'],
  description: 'Stop one or more machines',
  long: "Sends the stop signal (the machine's stop_config signal, else SIGINT) and waits for the machine to stop; after --timeout it is killed.",
  examples: ['hangar machine stop 3d8d413b29d089 -a web', 'hangar machine stop 3d8d413b29d089 -a web -s SIGTERM --timeout 30s'],
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  flags: {
    signal: { type: 'string', short: 's', description: 'Signal to send (SIGINT, SIGTERM, SIGKILL, ...)', valueName: 'SIGNAL' },
    timeout: { type: 'string', description: 'Time to wait after the signal before SIGKILL (seconds or 10s)', valueName: 'DURATION' },
    'wait-timeout': { type: 'string', short: 'w', description: 'How long to wait for the machine to stop', valueName: 'DURATION', default: '5m' },
    detach: { type: 'boolean', short: 'd', description: 'Do not wait for the machine to stop' },
  },
  hints: { failed_precondition: 'Check its state with `hangar machine status ID -a APP`' },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const { stop, waitMs } = parseStopFlags(flags);
    const api = client();
    for (const id of args.ids) {
      const machine = await api.machines.get(app, id);
      if (!global.json) out.line(`Sending kill signal to machine ${id}...`);
      await api.machines.stop(app, id, stop);
      if (flags.detach) continue;
      await waitForState(api, app, id, { state: 'stopped', version: machine.version, timeoutMs: waitMs });
      if (!global.json) out.line(`${id} has been successfully stopped`);
    }
    if (global.json) out.json(args.ids.map((id) => ({ id, ok: true })));
  },
});
