import { createCommand } from '../../framework.js';
import { CliError } from '../../errors.js';

export const appsDestroy = createCommand({
  path: ['apps', 'destroy'],
  aliases: ['delete', 'remove', 'rm'],
  description: 'Permanently destroy apps and all their machines',
  args: { names: { description: 'Apps to destroy', label: 'NAME', required: true, variadic: true } },
  flags: {
    yes: { type: 'boolean', short: 'y', description: 'Do not ask for confirmation', aliases: ['auto-confirm'] },
  },
  hints: { not_found: 'Run `hangar apps list` to see your apps' },
  async handler({ args, flags, global, out, client, confirm }) {
    for (const name of args.names) {
      if (!flags.yes) {
        const answer = await confirm(`Destroy app ${name} and all its machines? This cannot be undone.`);
        if (answer === undefined) {
          throw new CliError('invalid_argument', `destroying app ${name} needs confirmation`, `Re-run with --yes: \`hangar apps destroy ${name} --yes\``);
        }
        if (!answer) {
          out.line(`Not destroying app ${name}`);
          continue;
        }
      }
      await client().apps.delete(name, { force: true });
      if (!global.json) out.line(`Destroyed app ${name}`);
    }
    if (global.json) out.json({ destroyed: args.names });
  },
});
