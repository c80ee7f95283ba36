import { createCommand } from '../../framework.js';

export const machineStart = createCommand({
  path: ['machine', 'start'],
  description: 'Start one or more machines',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  hints: { failed_precondition: 'Check its state with `hangar machine status ID -a APP`' },
  async handler({ args, global, out, client, requireApp }) {
    const app = requireApp();
    const results = [];
    for (const id of args.ids) {
      const result = await client().machines.start(app, id);
      results.push({ id, ...result });
      if (!global.json) out.line(`${id} has been started`);
    }
    if (global.json) out.json(results);
  },
});
