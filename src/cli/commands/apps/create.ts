import { createCommand } from '../../framework.js';
import { UsageError } from '../../errors.js';

export const appsCreate = createCommand({
  path: ['apps', 'create'],
  description: 'Create a new app',
  examples: ['hangar apps create web', 'hangar apps create web --network blue'],
  args: { name: { description: 'App name (lowercase letters, digits and dashes)' } },
  flags: {
    name: { type: 'string', description: 'App name (instead of the argument)', valueName: 'NAME' },
    org: { type: 'string', short: 'o', description: 'Organization slug', valueName: 'ORG', default: 'personal' },
    network: { type: 'string', description: 'Custom private network for the app', valueName: 'NETWORK' },
  },
  hints: { name_taken: 'Choose another name, or see your apps with `hangar apps list`' },
  async handler({ args, flags, global, out, client }) {
    const name = args.name ?? flags.name;
    if (!name) throw new UsageError('missing app NAME: usage `hangar apps create NAME`', 'Run `hangar apps create --help` for usage');
    if (args.name && flags.name && args.name !== flags.name) throw new UsageError(`two names given: '${args.name}' and --name '${flags.name}'`);
    const created = await client().apps.create({ name, org_slug: flags.org, ...(flags.network ? { network: flags.network } : {}) });
    if (global.json) return out.json(created);
    out.line(`New app created: ${name}`);
  },
});
