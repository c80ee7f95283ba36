import { createCommand } from '../../framework.js';
import { UsageError } from '../../errors.js';

export const imageGc = createCommand({
  path: ['image', 'gc'],
  aliases: ['prune'],
  description: 'Delete images no machine uses, now',
  long: 'Runs image garbage collection on every connected host (or those of --region): every image that no machine (other than destroyed ones) uses goes, imported ones included unless --grace keeps recent imports. Agents also do this every hour on their own, keeping imports younger than an hour.',
  flags: {
    region: { type: 'string', short: 'r', description: 'Only the hosts of this region', valueName: 'REGION' },
    grace: { type: 'string', description: 'Keep images imported less than this many seconds ago (default 0)', valueName: 'SECONDS' },
  },
  async handler({ flags, global, out, client }) {
    const grace = flags.grace === undefined ? undefined : Number(flags.grace);
    if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) throw new UsageError(`--grace: expected a whole number of seconds, got ${JSON.stringify(flags.grace)}`);
    const result = await client().images.gc({ ...(flags.region ? { region: flags.region } : {}), ...(grace !== undefined ? { grace } : {}) });
    if (global.json) return out.json(result);
    for (const h of result.hosts) {
      if (h.error) out.line(`${h.host_id}: ${h.error}`);
      else out.line(`${h.host_id}: removed ${h.removed.filter((r) => r.startsWith('name ')).map((r) => r.slice(5)).join(', ') || 'no images'} (${h.removed.length} items)`);
    }
  },
});
