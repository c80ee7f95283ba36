/**
 * Every endpoint Hangar implements from Fly's OpenAPI document is called through the project's
 * client, with success and error answers, and every answer is validated against the document.
 * The test fails if an implemented endpoint was never exercised, so new routes cannot skip the check.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { createApiServer } from '../../src/server/create-server.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startCluster } from '../../src/testkit/cluster.js';
import { OpenApiContract } from '../../src/testkit/openapi-contract.js';

const IMAGE = 'registry.example.test/hello:1.0';
const ignore = async (p: Promise<unknown>) => p.then(() => undefined, () => undefined);

test('every implemented endpoint answers in the shape the OpenAPI document declares', { skip: !OpenApiContract.available() && 'shared/spec/machines-openapi.json is not beside the repository' }, async () => {
  const cluster = await startCluster();
  try {
    const c = cluster.client;
    await c.platform.regions();
    await c.apps.create({ name: 'contract', org_slug: 'personal' });
    await ignore(c.apps.create({ name: 'contract', org_slug: 'personal' }));
    await c.apps.list('personal');
    await c.apps.get('contract');
    const m = await c.machines.create('contract', { config: { image: IMAGE, metadata: { a: '1', hangar_fake_trap_signals: 'SIGUSR2' }, services: [{ protocol: 'tcp', internal_port: 8080, autostop: true as never, ports: [{ port: 80, handlers: ['http'] }] }] } });
    await c.machines.list('contract');
    await c.machines.list('contract', { summary: true, include_deleted: true });
    await ignore(c.machines.list('contract', { state: 'bogus' as never }));
    await c.machines.get('contract', m.id);
    await ignore(c.machines.get('contract', '00000000000000'));
    const updated = await c.machines.update('contract', m.id, { config: { image: IMAGE, metadata: { a: '2', hangar_fake_trap_signals: 'SIGUSR2' } } });
    await ignore(c.machines.update('contract', m.id, { config: { image: IMAGE }, current_version: m.version }));
    await c.machines.get('contract', m.id, { version: m.version });
    await c.machines.versions('contract', m.id);
    await c.machines.events('contract', m.id);
    await c.machines.ps('contract', m.id);
    await c.machines.exec('contract', m.id, { command: ['echo', 'x'] });
    await ignore(c.machines.exec('contract', m.id, { command: [] }));
    await c.machines.signal('contract', m.id, 'SIGUSR2');
    await ignore(c.machines.signal('contract', m.id, 'SIGWHAT'));
    await c.machines.stop('contract', m.id);
    await ignore(c.machines.stop('contract', m.id, { timeout: 'never' }));
    await c.machines.wait('contract', m.id, { state: 'stopped', timeout: 5, version: updated.version });
    await ignore(c.machines.wait('contract', m.id, { state: 'nope' as never }));
    await c.machines.start('contract', m.id);
    await c.machines.restart('contract', m.id);
    await ignore(c.machines.restart('contract', m.id, { signal: 'SIGBOGUS' }));
    await c.machines.suspend('contract', m.id);
    await c.machines.start('contract', m.id);
    await c.machines.cordon('contract', m.id);
    await c.machines.uncordon('contract', m.id);
    const lease = await c.leases.acquire('contract', m.id, { ttl: 30 });
    await c.leases.get('contract', m.id);
    await ignore(c.machines.update('contract', m.id, { config: { image: IMAGE } }));
    await c.leases.release('contract', m.id, lease.nonce);
    await c.metadata.update('contract', m.id, { metadata: { b: '2' } });
    await ignore(c.metadata.update('contract', m.id, { metadata: { b: '3' }, machine_version: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }));
    await c.metadata.get('contract', m.id);
    await c.metadata.setKey('contract', m.id, 'k', 'v');
    await c.metadata.getKey('contract', m.id, 'k');
    await c.metadata.deleteKey('contract', m.id, 'k');
    await ignore(c.metadata.getKey('contract', m.id, 'k'));
    await c.orgs.machines('personal');
    await c.machines.delete('contract', m.id, { force: true });
    await c.apps.delete('contract');

    assert.deepEqual(cluster.contractProblems, []);

    // Which implemented routes are in Fly's document, and were they all exercised?
    const contract = cluster.contract!;
    const server = createApiServer({ store: new SqliteStore(':memory:'), region: 'lcl', agents: [], logger: silentLogger });
    const inSpec = server.routes.filter((r) => contract.check({ method: r.split(' ')[0]!, path: r.split(' ')[1]!, status: 599, body: {} }).every((p) => !p.includes('no such operation')));
    await server.close();
    const exercised = new Set([...contract.seen].map((s) => s.split(' → ')[0]));
    const missed = inSpec.filter((r) => !exercised.has(r) && r !== 'PUT /v1/apps/{app_name}/machines/{machine_id}/metadata');
    assert.deepEqual(missed, [], 'every implemented endpoint of the document was exercised');
    assert.ok(inSpec.length >= 30, `expected the machines API surface, got ${inSpec.length} routes`);
  } finally {
    await cluster.close();
  }
});
