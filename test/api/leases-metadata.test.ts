/**
 * Leases (acquire, refresh with the nonce, 409 without it, release) and metadata (merge, deletes,
 * keys, 412 on a stale machine_version), against a real agent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HangarError } from '../../src/core/errors.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';

const IMAGE = 'registry.example.test/hello:1.0';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as HangarError).code;
  }
}

describe('leases and metadata', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
    await cluster.client.apps.create({ name: 'leased', org_slug: 'personal' });
  });
  after(async () => {
    assert.deepEqual(cluster.contractProblems, []);
    await cluster.close();
  });

  test('a lease guards mutations; the nonce passes, refresh keeps it, release frees it', async () => {
    const m = await cluster.client.machines.create('leased', { config: { image: IMAGE } });
    const lease = await cluster.client.leases.acquire('leased', m.id, { ttl: 60, description: 'deploy' });
    assert.match(lease.nonce, /^[0-9a-f]{12}$/);
    assert.equal(lease.version, m.version);
    assert.ok(lease.expires_at > Date.now() / 1000);
    const wire = await cluster.fetch(`/v1/apps/leased/machines/${m.id}/lease`);
    assert.deepEqual(Object.keys((await wire.json()) as object).sort(), ['data', 'status'], 'wrapped as flyctl decodes it');

    assert.equal(await codeOf(cluster.client.machines.stop('leased', m.id)), 'lease_conflict');
    const raw = await cluster.fetch(`/v1/apps/leased/machines/${m.id}/stop`, { method: 'POST' });
    assert.equal(raw.status, 409);
    assert.match(((await raw.json()) as { error: string }).error, /lease currently held by/);
    assert.equal(await codeOf(cluster.client.leases.acquire('leased', m.id, { ttl: 10 })), 'lease_conflict');
    assert.equal((await cluster.client.machines.get('leased', m.id)).state, 'started', 'nothing changed');

    await cluster.client.machines.stop('leased', m.id, { nonce: lease.nonce });
    const refreshed = await cluster.client.leases.acquire('leased', m.id, { ttl: 120 }, lease.nonce);
    assert.equal(refreshed.nonce, lease.nonce);
    assert.ok(refreshed.expires_at >= lease.expires_at);
    assert.equal(await codeOf(cluster.client.leases.release('leased', m.id, 'ffffffffffff')), 'lease_conflict');
    await cluster.client.leases.release('leased', m.id, lease.nonce);
    assert.equal(await codeOf(cluster.client.leases.get('leased', m.id)), 'not_found');
    await cluster.client.machines.start('leased', m.id);
  });

  test('lease_ttl on create returns the nonce on the machine', async () => {
    const m = await cluster.client.machines.create('leased', { config: { image: IMAGE }, lease_ttl: 30 });
    assert.match(m.nonce ?? '', /^[0-9a-f]{12}$/);
    assert.equal(await codeOf(cluster.client.machines.stop('leased', m.id)), 'lease_conflict');
    await cluster.client.machines.stop('leased', m.id, { nonce: m.nonce });
  });

  test('ttl from the query string (fly-go) and include_leases', async () => {
    const m = await cluster.client.machines.create('leased', { config: { image: IMAGE } });
    const res = await cluster.fetch(`/v1/apps/leased/machines/${m.id}/lease?ttl=5`, { method: 'POST' });
    assert.equal(res.status, 201);
    const body = (await res.json()) as { data: { expires_at: number } };
    assert.ok(body.data.expires_at <= Math.floor(Date.now() / 1000) + 6);
    const withLease = await cluster.client.machines.get('leased', m.id, { include_leases: true });
    assert.equal(withLease.lease?.owner, 'admin@hangar');
  });

  test('metadata merges, deletes with null or "", keys, stale machine_version is 412', async () => {
    const m = await cluster.client.machines.create('leased', { config: { image: IMAGE, metadata: { keep: 'yes', drop: 'x', blank: 'y' } } });
    await cluster.client.metadata.update('leased', m.id, { metadata: { added: '1', drop: null, blank: '' } });
    assert.deepEqual(await cluster.client.metadata.get('leased', m.id), { keep: 'yes', added: '1' });
    await cluster.client.metadata.setKey('leased', m.id, 'k', 'v');
    assert.equal(await cluster.client.metadata.getKey('leased', m.id, 'k'), 'v');
    await cluster.client.metadata.deleteKey('leased', m.id, 'k');
    assert.equal(await codeOf(cluster.client.metadata.getKey('leased', m.id, 'k')), 'not_found');
    const stale = await cluster.fetch(`/v1/apps/leased/machines/${m.id}/metadata`, {
      method: 'PATCH',
      json: { metadata: { z: '1' }, machine_version: '01ARZ3NDEKTSV4RRFFQ69G5FAV' },
    });
    assert.equal(stale.status, 412);
    const after = await cluster.client.machines.get('leased', m.id);
    assert.equal(after.version, m.version, 'metadata changes make no new version');
    assert.equal(after.config?.metadata?.z, undefined);
    const put = await cluster.fetch(`/v1/apps/leased/machines/${m.id}/metadata`, { method: 'PUT', json: { metadata: { p: '1' } } });
    assert.equal(put.status, 204);
    assert.equal((await cluster.client.metadata.get('leased', m.id)).keep, 'yes', 'PUT is still a merge');
  });
});
