import { createCommand } from '../../framework.js';

export const imageList = createCommand({
  path: ['image', 'list'],
  aliases: ['ls'],
  description: 'List the images stored on each host',
  flags: {
    region: { type: 'string', short: 'r', description: 'Only the hosts of this region', valueName: 'REGION' },
  },
  async handler({ flags, global, out, client }) {
    const result = await client().images.list(flags.region ? { region: flags.region } : {});
    if (global.json) return out.json(result);
    const rows = result.hosts.flatMap((h) => h.error
      ? [[h.host_id, h.region, `(${h.error})`, '', '', '']]
      : h.images.map((i) => [h.host_id, h.region, i.name, i.digest.replace(/^sha256:/, '').slice(0, 12), i.source, i.in_use ? 'yes' : 'no']));
    out.table(['Host', 'Region', 'Name', 'Digest', 'Source', 'In use'], rows);
  },
});
