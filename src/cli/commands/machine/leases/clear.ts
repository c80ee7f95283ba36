import { HangarError } from '../../../../core/errors.js';
import { createCommand } from '../../../framework.js';

export const leasesClear = createCommand({
  path: ['machine', 'leases', 'clear'],
  description: 'Release the leases held on machines',
  long: 'Reads each lease to learn its nonce, then releases it. Use it when a crashed deploy left a machine locked.',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  async handler({ args, global, out, client, requireApp }) {
    const app = requireApp();
    const cleared: string[] = [];
    for (const id of args.ids) {
      let nonce: string;
      try {
        nonce = (await client().leases.get(app, id)).nonce;
      } catch (err) {
        if (!(err instanceof HangarError) || err.code !== 'not_found') throw err;
        await client().machines.get(app, id);
        if (!global.json) out.line(`machine ${id} has no lease`);
        continue;
      }
      if (!global.json) out.line(`removing lease for machine ${id}`);
      await client().leases.release(app, id, nonce);
      cleared.push(id);
      if (!global.json) out.line(`machine ${id} lease cleared`);
    }
    if (global.json) out.json({ cleared });
  },
});
