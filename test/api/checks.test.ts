/**
 * Health checks through the API: the agent (fake driver) probes a loopback server of the test's
 * own (its private IPs are not reachable, so `resolveAddress` points probes at 127.0.0.1); the
 * statuses show in the Machine object's `checks` and every change is an upsert on the route watch.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CheckStatus } from '../../src/api-types/machine.js';
import type { RouteEvent, RouteMachine } from '../../src/api-types/watch.js';
import { parseNdjson } from '../../src/core/ndjson.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';
import { until } from '../../src/testkit/waiting.js';

const APP = 'checked';
const IMAGE = 'registry.example.test/hello:1.0';

/** How long a check status may take to show through the API. */
const CHECK_WAIT_MS = 5000;

describe('health checks through the API', () => {
  let cluster: TestCluster;
  let server: Server;
  let port = 0;
  let healthy = true;

  const listen = () => new Promise<void>((resolve) => {
    server = createServer((req, res) => res.writeHead(req.url === '/health' && healthy ? 200 : 503).end());
    server.listen(port, '127.0.0.1', () => {
      port = (server.address() as AddressInfo).port;
      resolve();
    });
  });

  before(async () => {
    await listen();
    cluster = await startCluster({ checks: { resolveAddress: () => '127.0.0.1', startupRetryMs: 50 } });
    await cluster.client.apps.create({ name: APP, org_slug: 'personal' });
  });
  after(async () => {
    await cluster.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    assert.deepEqual(cluster.contractProblems, [], 'every response matches the OpenAPI document');
  });

  const checksOf = async (id: string): Promise<CheckStatus[]> => (await cluster.client.machines.get(APP, id)).checks ?? [];
  const statusOf = async (id: string, name: string) => (await checksOf(id)).find((c) => c.name === name)?.status;

  test('GET machine shows service and top-level checks with Fly names; a failing check turns critical; stop clears them', async () => {
    const m = await cluster.client.machines.create(APP, {
      config: {
        image: IMAGE,
        services: [{ protocol: 'tcp', internal_port: port, ports: [{ port: 80, handlers: ['http'] }], checks: [{ type: 'http', path: '/health', interval: '100ms', timeout: '1s' }] }],
        checks: { alive: { type: 'tcp', port, interval: '100ms' } },
      },
    } as never);
    const service = `servicecheck-00-http-${port}`;
    await until('both passing', async () => (await statusOf(m.id, service)) === 'passing' && (await statusOf(m.id, 'alive')) === 'passing', CHECK_WAIT_MS);
    const checks = await checksOf(m.id);
    assert.deepEqual(checks.map((c) => [c.name, c.status, c.output]), [
      [service, 'passing', 'HTTP GET /health: 200 OK'],
      ['alive', 'passing', `TCP connect to port ${port}: connected`],
    ]);
    assert.ok(checks.every((c) => !Number.isNaN(Date.parse(c.updated_at))));

    healthy = false;
    await until('critical', async () => (await statusOf(m.id, service)) === 'critical', CHECK_WAIT_MS);
    assert.equal((await checksOf(m.id)).find((c) => c.name === service)?.output, 'HTTP GET /health: 503 Service Unavailable');
    assert.equal(await statusOf(m.id, 'alive'), 'passing', 'the tcp check still passes');
    healthy = true;

    await cluster.client.machines.stop(APP, m.id);
    assert.deepEqual(await checksOf(m.id), [], 'a stopped machine has no check results');
    await cluster.client.machines.delete(APP, m.id, { force: true });
  });

  test('the route watch stream carries checks and upserts a machine whenever a status changes', async () => {
    healthy = true;
    const abort = new AbortController();
    const res = await cluster.fetch('/v1/watch/routes', { signal: abort.signal });
    assert.equal(res.status, 200);
    const seen: RouteMachine[] = [];
    const reading = (async () => {
      try {
        for await (const event of parseNdjson<RouteEvent>(res.body as unknown as AsyncIterable<Uint8Array>)) {
          if (event.type === 'upsert') seen.push(event.machine);
        }
      } catch {
        // aborted
      }
    })();
    try {
      const m = await cluster.client.machines.create(APP, {
        config: { image: IMAGE, services: [{ protocol: 'tcp', internal_port: port, checks: [{ type: 'http', path: '/health', interval: '100ms' }] }] },
      } as never);
      const name = `servicecheck-00-http-${port}`;
      const statusIn = (r: RouteMachine) => r.checks.find((c) => c.name === name)?.status;
      const upsert = (status: string) => until(`${status} upsert`, async () => seen.find((r) => r.id === m.id && r.state === 'started' && statusIn(r) === status), CHECK_WAIT_MS);

      const warning = await upsert('warning');
      assert.deepEqual(warning.checks.map((c) => c.name), [name], 'a started machine is not checked yet: warning, no traffic');
      await upsert('passing');
      healthy = false;
      const critical = await until('critical upsert', async () => seen.find((r) => r.id === m.id && statusIn(r) === 'critical'), CHECK_WAIT_MS);
      assert.match(critical.checks[0]!.output, /503/);
      healthy = true;
      await until('passing again', async () => seen.filter((r) => r.id === m.id && statusIn(r) === 'passing').length >= 2, CHECK_WAIT_MS);

      // Only changes make upserts: with a 100 ms interval, a second of steady passing adds none.
      const count = seen.filter((r) => r.id === m.id).length;
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(seen.filter((r) => r.id === m.id).length, count);
      await cluster.client.machines.delete(APP, m.id, { force: true });
    } finally {
      abort.abort();
      await reading;
    }
  });
});
