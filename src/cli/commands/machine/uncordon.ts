import { createCommand } from '../../framework.js';

export const machineUncordon = createCommand({
  path: ['machine', 'uncordon'],
  description: 'Route traffic to machines again',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  async handler({ args, global, out, client, requireApp }) {
    const app = requireApp();
    for (const id of args.ids) {
      await client().machines.uncordon(app, id);
      if (!global.json) out.line(`Machine ${id} uncordoned`);
    }
    if (global.json) out.json(args.ids.map((id) => ({ id, uncordoned: true })));
  },
});
