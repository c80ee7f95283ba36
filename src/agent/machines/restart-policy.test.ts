import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MachineConfig } from '../../api-types/machine.js';
import type { ExitInfo } from '../drivers/driver.js';
import { decideAfterExit, exitEvent, stopOptions } from './restart-policy.js';

const exit = (code: number, extra: Partial<ExitInfo> = {}): ExitInfo => ({ exit_code: code, signal: 0, oom_killed: false, requested_stop: false, exited_at: 0, ...extra });
const config = (c: Partial<MachineConfig> = {}): MachineConfig => ({ image: 'x', ...c });
const backoff = { initialMs: 100, maxMs: 5000 };

describe('decideAfterExit', () => {
  test('on-failure is the default: restart non-zero exits, not clean ones', () => {
    assert.deepEqual(decideAfterExit(config(), exit(1), 0, backoff), { action: 'restart', delayMs: 100, attempt: 1 });
    assert.equal(decideAfterExit(config(), exit(0), 0, backoff).action, 'stop');
    assert.equal(decideAfterExit(config(), exit(137, { signal: 9 }), 0, backoff).action, 'restart');
    assert.equal(decideAfterExit(config(), exit(0, { oom_killed: true }), 0, backoff).action, 'restart');
  });

  test('on-failure gives up after max_retries (default 10)', () => {
    assert.equal(decideAfterExit(config(), exit(1), 9, backoff).action, 'restart');
    assert.equal(decideAfterExit(config(), exit(1), 10, backoff).action, 'stop');
    assert.equal(decideAfterExit(config({ restart: { policy: 'on-failure', max_retries: 2 } }), exit(1), 2, backoff).action, 'stop');
  });

  test('backoff doubles from 100ms and caps at 5s', () => {
    const delays = [0, 1, 2, 3, 5, 6, 9].map((n) => {
      const d = decideAfterExit(config({ restart: { policy: 'always' } }), exit(0), n, backoff);
      return d.action === 'restart' ? d.delayMs : -1;
    });
    assert.deepEqual(delays, [100, 200, 400, 800, 3200, 5000, 5000]);
  });

  test('always restarts without limit; no never restarts; auto_destroy wins', () => {
    assert.equal(decideAfterExit(config({ restart: { policy: 'always' } }), exit(0), 1000, backoff).action, 'restart');
    assert.equal(decideAfterExit(config({ restart: { policy: 'no' } }), exit(1), 0, backoff).action, 'stop');
    assert.deepEqual(decideAfterExit(config({ auto_destroy: true, restart: { policy: 'always' } }), exit(1), 0, backoff), { action: 'destroy' });
  });
});

describe('stopOptions', () => {
  test('defaults to SIGINT and 5s', () => {
    assert.deepEqual(stopOptions(config()), { signal: 2, timeoutMs: 5000 });
  });
  test('stop_config, then the request, wins', () => {
    const c = config({ stop_config: { signal: 'SIGTERM', timeout: '1m30s' } });
    assert.deepEqual(stopOptions(c), { signal: 15, timeoutMs: 90_000 });
    assert.deepEqual(stopOptions(c, { signal: 9, timeout_ms: 10 }), { signal: 9, timeoutMs: 10 });
  });
});

test('exitEvent uses fly-go field names and an RFC 3339 exited_at', () => {
  assert.deepEqual(exitEvent(exit(3, { exited_at: Date.UTC(2024, 0, 2) }), true), {
    exit_code: 3, guest_exit_code: 3, signal: 0, guest_signal: 0, oom_killed: false, requested_stop: false, restarting: true, exited_at: '2024-01-02T00:00:00.000Z',
  });
});
