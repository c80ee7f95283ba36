/**
 * Waiting for a machine to reach a state for longer than one server-side wait (≤ 60 s): loop
 * `GET /wait` until the deadline, treating each 408 as "not yet", as flyctl does.
 * @module
 */
import type { HangarClient } from '../client/client.js';
import type { WaitMachineResponse } from '../api-types/machine.js';
import { formatDuration } from '../core/durations.js';
import { HangarError } from '../core/errors.js';

export const DEFAULT_WAIT_TIMEOUT_MS = 5 * 60_000;

export interface WaitForStateOptions {
  state: string;
  version?: string | undefined;
  timeoutMs?: number;
}

export async function waitForState(client: HangarClient, app: string, id: string, options: WaitForStateOptions): Promise<WaitMachineResponse> {
  const total = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const deadline = Date.now() + total;
  for (;;) {
    const remaining = Math.ceil((deadline - Date.now()) / 1000);
    const started = Date.now();
    try {
      return await client.machines.wait(app, id, {
        state: options.state,
        timeout: Math.min(60, Math.max(1, remaining)),
        ...(options.version ? { version: options.version } : {}),
      });
    } catch (err) {
      if (!(err instanceof HangarError) || err.code !== 'timeout') throw err;
      if (Date.now() >= deadline) {
        throw new HangarError('timeout', `machine ${id} (app ${app}) did not reach state ${options.state} within ${formatDuration(total)}`, { cause: err });
      }
      // A server that answers 408 at once (instead of blocking) must not be hammered.
      if (Date.now() - started < 200) await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, deadline - Date.now()))));
    }
  }
}
