import { createCommand } from '../../framework.js';
import { runMachine } from './run.js';
import { RUN_FLAGS } from './shared.js';

export const machineCreate = createCommand({
  path: ['machine', 'create'],
  description: 'Create a machine without starting it',
  long: 'Same as `hangar machine run --skip-launch`: the machine stays in the created state until `hangar machine start`.',
  examples: ['hangar machine create nginx -a web --name web-1'],
  appScoped: true,
  args: {
    image: { description: 'OCI image to run', required: true },
    command: { description: 'Command (and arguments) to run instead of the image default', variadic: true },
  },
  acceptsRest: 'COMMAND',
  flags: RUN_FLAGS,
  handler: (ctx) => runMachine(ctx, 'create'),
});
