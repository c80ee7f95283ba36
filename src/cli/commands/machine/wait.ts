import { WAITABLE_STATES } from '../../../core/machine-states.js';
import { formatDuration } from '../../../core/durations.js';
import { createCommand } from '../../framework.js';
import { UsageError } from '../../errors.js';
import { parseDurationFlag } from '../../machine-flags.js';
import { waitForState } from '../../wait.js';

export const machineWait = createCommand({
  path: ['machine', 'wait'],
  description: 'Wait for a machine to reach a state',
  examples: ['hangar machine wait 3d8d413b29d089 -a web --state started --wait-timeout 60s'],
  appScoped: true,
  args: { id: { description: 'Machine ID', required: true } },
  flags: {
    state: { type: 'string', description: `State to wait for: ${WAITABLE_STATES.join(', ')}`, valueName: 'STATE', default: 'settled' },
    'wait-timeout': { type: 'string', short: 'w', description: 'How long to wait', valueName: 'DURATION', default: '5m' },
  },
  hints: { timeout: 'Wait longer with --wait-timeout, or look at `hangar machine status ID -a APP`' },
  async handler({ args, flags, global, out, client, requireApp }) {
    const app = requireApp();
    const state = flags.state;
    if (!(WAITABLE_STATES as readonly string[]).includes(state)) {
      throw new UsageError(`--state: expected one of ${WAITABLE_STATES.join(', ')}, got '${state}'`);
    }
    const waitMs = parseDurationFlag('wait-timeout', flags['wait-timeout']);
    const api = client();
    // Waiting for `stopped` needs the version that should stop (Fly docs); pass the current one.
    const machine = await api.machines.get(app, args.id);
    if (!global.json) out.info(`Waiting up to ${formatDuration(waitMs)} for machine ${args.id} to be ${state}...`);
    const result = await waitForState(api, app, args.id, { state, version: machine.version, timeoutMs: waitMs });
    if (global.json) return out.json(result);
    out.line(`Machine ${args.id} reached state ${result.state ?? state}`);
  },
});
