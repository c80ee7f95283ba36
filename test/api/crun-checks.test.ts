/**
 * Health checks on a real container: busybox httpd on crun, probed by the agent on the machine's
 * private IPv6 address (no address seam here).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckStatus, Machine } from '../../src/api-types/machine.js';
import { crunClusterUnavailable, startCrunCluster, type CrunCluster } from '../../src/testkit/crun-cluster.js';
import { until } from './crun-helpers.js';

const unavailable = crunClusterUnavailable();
const APP = 'chk';

describe('health checks on crun', { skip: unavailable, timeout: 120_000 }, () => {
  let c: CrunCluster;
  before(async () => {
    c = await startCrunCluster({ tag: 'ck' });
    await c.cluster.client.apps.create({ name: APP, org_slug: 'personal' });
  });
  after(async () => {
    await c?.close();
    assert.deepEqual(c?.cluster.contractProblems ?? [], [], 'every response matches the OpenAPI document');
  });

  test('an http service check on busybox httpd passes; a check on a missing path is critical; stop clears them', async () => {
    const client = c.cluster.client;
    const m: Machine = await client.machines.create(APP, {
      region: 'lcl',
      config: {
        image: c.images.httpd,
        services: [{ protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }], checks: [{ type: 'http', path: '/index.html', interval: '1s', timeout: '1s' }] }],
        checks: { missing: { type: 'http', port: 8080, path: '/nope', interval: '1s' }, closed: { type: 'tcp', port: 9999, interval: '1s' } },
      },
    } as never);
    const byName = async () => new Map(((await client.machines.get(APP, m.id)).checks ?? []).map((s: CheckStatus) => [s.name, s]));
    const settled = await until('all three checked', async () => {
      const checks = await byName();
      return [...checks.values()].length === 3 && [...checks.values()].every((s) => s.status !== 'warning') ? checks : undefined;
    }, 15_000);
    assert.equal(settled.get('servicecheck-00-http-8080')?.status, 'passing');
    assert.equal(settled.get('servicecheck-00-http-8080')?.output, 'HTTP GET /index.html: 200 OK');
    assert.equal(settled.get('missing')?.status, 'critical');
    assert.equal(settled.get('missing')?.output, 'HTTP GET /nope: 404 Not Found');
    assert.equal(settled.get('closed')?.status, 'critical');
    assert.equal(settled.get('closed')?.output, 'TCP connect to port 9999: connect ECONNREFUSED');

    await client.machines.stop(APP, m.id, { timeout: '5s' } as never);
    assert.deepEqual((await client.machines.get(APP, m.id)).checks, []);
    await client.machines.delete(APP, m.id, { force: true });
  });
});
