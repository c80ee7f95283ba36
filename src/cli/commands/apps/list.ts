import { createCommand } from '../../framework.js';

export const appsList = createCommand({
  path: ['apps', 'list'],
  aliases: ['ls'],
  description: 'List apps',
  flags: {
    org: { type: 'string', short: 'o', description: 'Organization slug', valueName: 'ORG', default: 'personal' },
    quiet: { type: 'boolean', short: 'q', description: 'Only print app names' },
  },
  async handler({ flags, global, out, client }) {
    const result = await client().apps.list(flags.org);
    if (global.json) return out.json(result);
    const apps = [...result.apps].sort((a, b) => a.name.localeCompare(b.name));
    if (flags.quiet) {
      for (const app of apps) out.line(app.name);
      return;
    }
    out.table(
      ['Name', 'Owner', 'Status', 'Network', 'Machines'],
      apps.map((app) => [app.name, app.organization?.slug, app.status, app.network, app.machine_count]),
    );
  },
});
