import { createCommand } from '../../framework.js';
import { CliError } from '../../errors.js';

export const machineKill = createCommand({
  path: ['machine', 'kill'],
  description: 'Kill (SIGKILL) a machine',
  appScoped: true,
  args: { id: { description: 'Machine ID', required: true } },
  hints: { failed_precondition: 'Only a started machine can be killed; check it with `hangar machine status ID -a APP`' },
  async handler({ args, global, out, client, requireApp }) {
    const app = requireApp();
    const api = client();
    const machine = await api.machines.get(app, args.id);
    if (machine.state === 'destroyed') throw new CliError('failed_precondition', `machine ${args.id} has already been destroyed`);
    if (!global.json) out.line(`machine ${args.id} was found and is currently in a ${machine.state} state, attempting to kill...`);
    // flyctl sends the number; the API accepts names and numbers.
    await api.machines.signal(app, args.id, 9);
    if (global.json) return out.json({ id: args.id, signal: 9, ok: true });
    out.line('kill signal has been sent');
  },
});
