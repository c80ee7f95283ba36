import { createCommand } from '../../framework.js';
import { UsageError } from '../../errors.js';

export const imageImport = createCommand({
  path: ['image', 'import'],
  aliases: ['load'],
  description: 'Load an image archive onto the hosts',
  long: 'Loads an OCI archive (oci-layout tar) or a docker-archive tarball (`docker save`, `podman save`; gzip is fine) on every connected host, or those of --region, for hosts without a registry. A machine config\'s image can then name it. NAME defaults to the name inside the archive. Imported images stay until no machine uses them and they are older than the agent\'s GC grace (1 h by default).',
  examples: ['hangar image import ./app.tar myapp:1', 'docker save myapp:1 | gzip > app.tar.gz && hangar image import app.tar.gz', 'hangar image import ./app.tar --json'],
  args: {
    file: { description: 'The archive', label: 'FILE', required: true },
    name: { description: 'Name to import it as (NAME[:TAG]); default the archive\'s own', label: 'NAME[:TAG]' },
  },
  flags: {
    region: { type: 'string', short: 'r', description: 'Only the hosts of this region', valueName: 'REGION' },
  },
  hints: {
    invalid_argument: 'Export the image with `docker save IMAGE -o FILE` or `skopeo copy docker://IMAGE oci-archive:FILE`',
    unavailable: 'Start an agent (`hangar up`) and retry',
  },
  async handler({ args, flags, global, out, client }) {
    if (!args.file) throw new UsageError('missing FILE: usage `hangar image import FILE [NAME[:TAG]]`');
    const result = await client().images.import(args.file, { ...(args.name ? { name: args.name } : {}), ...(flags.region ? { region: flags.region } : {}) });
    if (global.json) return out.json(result);
    out.line(`Imported ${result.name} (${result.digest}) on ${result.hosts.length} host${result.hosts.length === 1 ? '' : 's'}`);
  },
});
