import { createCommand } from '../../framework.js';

export const machineDestroy = createCommand({
  path: ['machine', 'destroy'],
  aliases: ['remove', 'rm'],
  description: 'Destroy one or more machines',
  long: 'Without --force only created, stopped, suspended or failed machines can be destroyed.',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  flags: {
    force: { type: 'boolean', short: 'f', description: 'Kill the machine first if it is running' },
  },
  hints: { failed_precondition: 'Stop it first with `hangar machine stop ID -a APP`, or use --force' },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const api = client();
    for (const id of args.ids) {
      const machine = await api.machines.get(app, id);
      if (!global.json) out.line(`machine ${id} was found and is currently in ${machine.state} state, attempting to destroy...`);
      await api.machines.delete(app, id, flags.force ? { force: true } : {});
      if (!global.json) out.line(`${id} has been destroyed`);
    }
    if (global.json) out.json(args.ids.map((id) => ({ id, destroyed: true })));
  },
});
