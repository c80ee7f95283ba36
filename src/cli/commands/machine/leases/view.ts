import type { Lease } from '../../../../api-types/machine.js';
import { HangarError } from '../../../../core/errors.js';
import { createCommand } from '../../../framework.js';

export const leasesView = createCommand({
  path: ['machine', 'leases', 'view'],
  aliases: ['show'],
  description: 'Show the leases held on machines',
  appScoped: true,
  args: { ids: { description: 'Machine IDs', label: 'ID', required: true, variadic: true } },
  async handler({ args, global, out, client, requireApp }) {
    const app = requireApp();
    const found: { machine: string; lease: Lease }[] = [];
    for (const id of args.ids) {
      try {
        found.push({ machine: id, lease: await client().leases.get(app, id) });
      } catch (err) {
        // 404 means "no lease"; a missing machine is reported by a second look.
        if (!(err instanceof HangarError) || err.code !== 'not_found') throw err;
        await client().machines.get(app, id);
      }
    }
    if (global.json) return out.json(found.map((f) => ({ machine: f.machine, ...f.lease })));
    if (found.length === 0) {
      out.line('No leases found');
      return;
    }
    const now = Date.now() / 1000;
    out.table(
      ['Machine', 'Nonce', 'Status', 'Owner', 'Description', 'Expires'],
      found.map(({ machine, lease }) => [
        machine, lease.nonce, lease.expires_at > now ? 'active' : 'expired', lease.owner, lease.description,
        new Date(lease.expires_at * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      ]),
    );
  },
});
