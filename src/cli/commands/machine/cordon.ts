import { createCommand } from '../../framework.js';

export const machineCordon = createCommand({
  path: ['machine', 'cordon'],
  description: 'Stop routing traffic to machines (the proxy skips cordoned machines)',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  async handler({ args, global, out, client, requireApp }) {
    const app = requireApp();
    for (const id of args.ids) {
      await client().machines.cordon(app, id);
      if (!global.json) out.line(`Machine ${id} cordoned`);
    }
    if (global.json) out.json(args.ids.map((id) => ({ id, cordoned: true })));
  },
});
