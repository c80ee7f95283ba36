import { createCommand } from '../../framework.js';
import { parseDurationFlag } from '../../machine-flags.js';
import { waitForState } from '../../wait.js';

export const machineSuspend = createCommand({
  path: ['machine', 'suspend'],
  description: 'Suspend one or more machines (snapshot memory to disk; the next start resumes)',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  flags: {
    'wait-timeout': { type: 'string', short: 'w', description: 'How long to wait for the machine to suspend', valueName: 'DURATION', default: '5m' },
    detach: { type: 'boolean', short: 'd', description: 'Do not wait for the machine to be suspended' },
  },
  hints: { failed_precondition: 'Only a started machine can be suspended; check it with `hangar machine status ID -a APP`' },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const waitMs = parseDurationFlag('wait-timeout', flags['wait-timeout']);
    const api = client();
    for (const id of args.ids) {
      if (!global.json) out.line(`Suspending machine ${id}...`);
      await api.machines.suspend(app, id);
      if (!flags.detach) await waitForState(api, app, id, { state: 'suspended', timeoutMs: waitMs });
      if (!global.json) out.line(`Machine ${id} suspended`);
    }
    if (global.json) out.json(args.ids.map((id) => ({ id, ok: true })));
  },
});
