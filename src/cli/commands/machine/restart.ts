import { createCommand } from '../../framework.js';
import { parseStopFlags } from '../../machine-flags.js';
import { waitForState } from '../../wait.js';

export const machineRestart = createCommand({
  path: ['machine', 'restart'],
  description: 'Restart one or more machines',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  flags: {
    signal: { type: 'string', short: 's', description: 'Signal to stop the machine with', valueName: 'SIGNAL' },
    timeout: { type: 'string', description: 'Time to wait after the signal before SIGKILL (seconds or 10s)', valueName: 'DURATION', aliases: ['time'] },
    force: { type: 'boolean', short: 'f', description: 'Force stop the machine' },
    'wait-timeout': { type: 'string', short: 'w', description: 'How long to wait for the machine to start again', valueName: 'DURATION', default: '5m' },
    detach: { type: 'boolean', short: 'd', description: 'Do not wait for the machine to start again' },
  },
  hints: { failed_precondition: 'Only a started machine can be restarted; start it with `hangar machine start ID -a APP`' },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const { stop, waitMs } = parseStopFlags(flags);
    const api = client();
    for (const id of args.ids) {
      if (!global.json) out.line(`Restarting machine ${id}`);
      await api.machines.restart(app, id, { ...stop, ...(flags.force ? { force_stop: true } : {}) });
      if (!flags.detach) await waitForState(api, app, id, { state: 'started', timeoutMs: waitMs });
      if (!global.json) out.line(`Machine ${id} restarted successfully!`);
    }
    if (global.json) out.json(args.ids.map((id) => ({ id, ok: true })));
  },
});
