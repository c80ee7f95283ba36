import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CheckStatus, MachineConfig } from '../../api-types/machine.js';
import { checkSpecs, DEFAULT_INTERVAL_MS, DEFAULT_TIMEOUT_MS, initialStatuses, nextDelay, truncate, withResult } from './check-specs.js';

const config = (raw: unknown) => MachineConfig.parse(raw);

describe('check specs: names and defaults', () => {
  test('service checks are numbered over all services as servicecheck-NN-<type>-<port>; top-level ones keep their key', () => {
    const specs = checkSpecs(config({
      image: 'x',
      services: [
        { protocol: 'tcp', internal_port: 8080, checks: [{ type: 'http', path: '/health' }, { type: 'tcp' }] },
        { protocol: 'tcp', internal_port: 9000, checks: [{ type: 'tcp', port: 9001 }] },
      ],
      checks: { status: { type: 'http', port: 5500, kind: 'readiness' }, alive: { type: 'tcp', port: 5501 } },
    }));
    assert.deepEqual(specs.map((s) => [s.name, s.source, s.kind, s.type, s.port]), [
      ['servicecheck-00-http-8080', 'service', 'readiness', 'http', 8080],
      ['servicecheck-01-tcp-8080', 'service', 'readiness', 'tcp', 8080],
      ['servicecheck-02-tcp-9001', 'service', 'readiness', 'tcp', 9001],
      ['status', 'machine', 'readiness', 'http', 5500],
      ['alive', 'machine', 'informational', 'tcp', 5501],
    ]);
  });

  test('defaults: tcp, interval 15s, timeout 2s, no grace, GET /, http; durations parsed; headers flattened', () => {
    const [plain, full] = checkSpecs(config({
      image: 'x',
      services: [{ protocol: 'tcp', internal_port: 80, checks: [{}, {
        type: 'http', interval: '10s', timeout: '1500ms', grace_period: '30s', method: 'head', path: 'healthz',
        protocol: 'https', tls_skip_verify: true, tls_server_name: 'app.example', headers: [{ name: 'X-A', values: ['1', '2'] }],
      }] }],
    }));
    assert.deepEqual(
      { type: plain!.type, interval: plain!.intervalMs, timeout: plain!.timeoutMs, grace: plain!.graceMs, method: plain!.method, path: plain!.path, protocol: plain!.protocol },
      { type: 'tcp', interval: DEFAULT_INTERVAL_MS, timeout: DEFAULT_TIMEOUT_MS, grace: 0, method: 'GET', path: '/', protocol: 'http' },
    );
    assert.deepEqual(
      { interval: full!.intervalMs, timeout: full!.timeoutMs, grace: full!.graceMs, method: full!.method, path: full!.path, skip: full!.tlsSkipVerify, sni: full!.tlsServerName, headers: full!.headers },
      { interval: 10_000, timeout: 1500, grace: 30_000, method: 'HEAD', path: '/healthz', skip: true, sni: 'app.example', headers: [['X-A', '1'], ['X-A', '2']] },
    );
  });

  test('durations are clamped: interval ≥ 100ms, timeout ≤ 60s', () => {
    const [spec] = checkSpecs(config({ image: 'x', checks: { c: { type: 'tcp', port: 1, interval: '1ms', timeout: '5m' } } }));
    assert.equal(spec!.intervalMs, 100);
    assert.equal(spec!.timeoutMs, 60_000);
  });

  test('a top-level check without a port keeps an undefined port (it will report critical)', () => {
    const [spec] = checkSpecs(config({ image: 'x', checks: { c: { type: 'http' } } }));
    assert.equal(spec!.port, undefined);
  });

  test('no checks, no specs', () => {
    assert.deepEqual(checkSpecs(config({ image: 'x', services: [{ protocol: 'tcp', internal_port: 80 }] })), []);
  });
});

describe('check specs: statuses and scheduling', () => {
  test('initial statuses are warning, one per check', () => {
    const now = new Date('2024-01-01T00:00:00Z');
    const statuses = initialStatuses(config({ image: 'x', services: [{ protocol: 'tcp', internal_port: 80, checks: [{ grace_period: '5s' }] }], checks: { a: { port: 1 } } }), now);
    assert.deepEqual(statuses, [
      { name: 'servicecheck-00-tcp-80', status: 'warning', output: 'waiting for the first check (grace period 5000 ms)', updated_at: '2024-01-01T00:00:00.000Z' },
      { name: 'a', status: 'warning', output: 'waiting for the first check', updated_at: '2024-01-01T00:00:00.000Z' },
    ]);
  });

  test('first run after the grace period (at once when resumed); then fast retries until the first pass; then every interval', () => {
    const spec = { intervalMs: 15_000, graceMs: 3_000 };
    assert.equal(nextDelay(spec, { runs: 0, passedOnce: false, resumed: false }), 3_000);
    assert.equal(nextDelay(spec, { runs: 0, passedOnce: true, resumed: true }), 0);
    assert.equal(nextDelay(spec, { runs: 1, passedOnce: false, resumed: false }), 1_000);
    assert.equal(nextDelay(spec, { runs: 1, passedOnce: false, resumed: false }, 250), 250);
    assert.equal(nextDelay(spec, { runs: 4, passedOnce: true, resumed: false }), 15_000);
    // An interval shorter than the startup retry wins.
    assert.equal(nextDelay({ intervalMs: 200, graceMs: 0 }, { runs: 1, passedOnce: false, resumed: false }), 200);
  });

  test('withResult reports a change only when the status changes (not the output)', () => {
    const t0 = new Date('2024-01-01T00:00:00Z');
    const t1 = new Date('2024-01-01T00:00:10Z');
    let list: CheckStatus[] = [{ name: 'a', status: 'warning', output: 'waiting', updated_at: t0.toISOString() }];
    let r = withResult(list, 'a', 'passing', 'HTTP GET /: 200 OK', t1);
    assert.equal(r.changed, true);
    assert.deepEqual(r.list, [{ name: 'a', status: 'passing', output: 'HTTP GET /: 200 OK', updated_at: t1.toISOString() }]);
    list = r.list;
    r = withResult(list, 'a', 'passing', 'HTTP GET /: 204 No Content');
    assert.equal(r.changed, false);
    assert.equal(r.list, list);
    r = withResult(list, 'b', 'critical', 'x');
    assert.equal(r.changed, true);
    assert.deepEqual(r.list.map((c) => c.name), ['a', 'b']);
  });

  test('outputs are one short line', () => {
    assert.equal(truncate('a\n  b'), 'a b');
    assert.equal(truncate('x'.repeat(300)).length, 200);
  });
});
