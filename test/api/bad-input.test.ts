/**
 * Bad input at the API boundary: every case gets a specific 4xx naming the field, never a 500, and
 * changes nothing. Auth is required everywhere but the regions list.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';

const IMAGE = 'registry.example.test/hello:1.0';

describe('bad input', () => {
  let cluster: TestCluster;
  let machineId: string;
  before(async () => {
    cluster = await startCluster();
    await cluster.client.apps.create({ name: 'strict', org_slug: 'personal' });
    machineId = (await cluster.client.machines.create('strict', { config: { image: IMAGE } })).id;
  });
  after(async () => {
    await cluster.close();
  });

  const expectError = async (res: Response, status: number, code: string, pattern: RegExp) => {
    const body = (await res.json()) as { error: string; status: string };
    assert.equal(res.status, status, `${body.status}: ${body.error}`);
    assert.equal(body.status, code);
    assert.match(body.error, pattern);
    assert.ok(res.headers.get('fly-request-id'), 'every answer has fly-request-id');
  };

  test('machine create bodies', async () => {
    const post = (json: unknown) => cluster.fetch('/v1/apps/strict/machines', { method: 'POST', json });
    await expectError(await cluster.fetch('/v1/apps/strict/machines', { method: 'POST', body: '{"config": ', headers: { 'content-type': 'application/json' } }), 400, 'bad_request', /not valid JSON/);
    await expectError(await post({ config: {} }), 400, 'invalid_argument', /config\.image/);
    await expectError(await post({ config: { image: '' } }), 400, 'invalid_argument', /config\.image: .*required/);
    await expectError(await post({ config: { image: IMAGE, guest: { cpus: 'two' } } }), 400, 'invalid_argument', /config\.guest\.cpus.*"two"/);
    await expectError(await post({ config: { image: IMAGE, guest: { cpus: 0 } } }), 400, 'invalid_argument', /config\.guest\.cpus/);
    await expectError(await post({ config: { image: IMAGE, guest: { cpus: 1, memory_mb: 65536 } } }), 400, 'invalid_argument', /config\.guest\.memory_mb: 65536 is out of range/);
    await expectError(await post({ config: { image: IMAGE, guest: { memory_mb: 64 } } }), 400, 'invalid_argument', /memory_mb/);
    await expectError(await post({ name: 'Not_A_Label', config: { image: IMAGE } }), 400, 'invalid_argument', /name: must be a lowercase DNS label/);
    await expectError(await post({ region: 'nowhere', config: { image: IMAGE } }), 400, 'invalid_argument', /region/);
    await expectError(await post({ region: 'xyz', config: { image: IMAGE } }), 503, 'insufficient_capacity', /region "xyz".*lcl/);
    await expectError(await post({ config: { image: IMAGE, services: [{ protocol: 'tcp', internal_port: 70000 }] } }), 400, 'invalid_argument', /config\.services\[0\]\.internal_port/);
    await expectError(await post({ config: { image: IMAGE, restart: { policy: 'sometimes' } } }), 400, 'invalid_argument', /config\.restart\.policy/);
    await expectError(await post({ config: { image: IMAGE, size: 'huge-cpu-9x' } }), 400, 'invalid_argument', /config\.size/);
    await expectError(await post([1, 2]), 400, 'invalid_argument', /body|expected object/);
    const listed = await cluster.client.machines.list('strict');
    assert.equal(listed.length, 1, 'no failed create left a machine behind');
  });

  test('unknown fields are ignored', async () => {
    const res = await cluster.fetch('/v1/apps/strict/machines', { method: 'POST', json: { future_field: 1, config: { image: IMAGE, also_new: true }, skip_launch: true } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; config: Record<string, unknown> };
    assert.equal(body.config.also_new, undefined);
    await cluster.client.machines.delete('strict', body.id);
  });

  test('bodies over 1 MiB are 413', async () => {
    const big = JSON.stringify({ config: { image: IMAGE, env: { BIG: 'x'.repeat(1024 * 1024 + 10) } } });
    const res = await cluster.fetch('/v1/apps/strict/machines', { method: 'POST', body: big, headers: { 'content-type': 'application/json' } });
    await expectError(res, 413, 'payload_too_large', /1 MiB/);
  });

  test('unknown apps, machines and routes are 404; wrong methods 405', async () => {
    await expectError(await cluster.fetch('/v1/apps/nope/machines'), 404, 'not_found', /app "nope" not found/);
    await expectError(await cluster.fetch('/v1/apps/strict/machines/0123456789abcd'), 404, 'not_found', /machine 0123456789abcd/);
    await expectError(await cluster.fetch('/v1/nothing-here'), 404, 'not_found', /no route/);
    await expectError(await cluster.fetch('/v1/apps/strict', { method: 'PATCH' }), 405, 'method_not_allowed', /PATCH/);
  });

  test('query parameters are checked', async () => {
    await expectError(await cluster.fetch('/v1/apps/strict/machines?summary=maybe'), 400, 'invalid_argument', /summary/);
    await expectError(await cluster.fetch('/v1/apps/strict/machines?state=sleeping'), 400, 'invalid_argument', /state/);
    await expectError(await cluster.fetch('/v1/apps'), 400, 'invalid_argument', /org_slug/);
    await expectError(await cluster.fetch(`/v1/apps/strict/machines/${machineId}/wait?timeout=forever`), 400, 'invalid_argument', /timeout/);
    await expectError(await cluster.fetch(`/v1/apps/strict/machines/${machineId}/stop`, { method: 'POST', json: { timeout: 'soon' } }), 400, 'invalid_argument', /timeout/);
    await expectError(await cluster.fetch(`/v1/apps/strict/machines/${machineId}/stop`, { method: 'POST', json: { signal: 'SIGSEGV' } }), 400, 'invalid_argument', /signal/);
    await expectError(await cluster.fetch(`/v1/apps/strict/machines/${machineId}/exec`, { method: 'POST', json: {} }), 400, 'invalid_argument', /command/);
    assert.equal((await cluster.client.machines.get('strict', machineId)).state, 'started');
  });

  test('apps: bad names, unknown org', async () => {
    await expectError(await cluster.fetch('/v1/apps', { method: 'POST', json: { name: 'Bad Name', org_slug: 'personal' } }), 400, 'invalid_argument', /name: must be a lowercase DNS label/);
    await expectError(await cluster.fetch('/v1/apps', { method: 'POST', json: { org_slug: 'personal' } }), 400, 'invalid_argument', /name is required/);
    await expectError(await cluster.fetch('/v1/apps', { method: 'POST', json: { name: 'ok-name', org_slug: 'acme' } }), 404, 'not_found', /organization "acme"/);
    const legacy = await cluster.fetch('/v1/apps', { method: 'POST', json: { app_name: 'legacy-name', org_slug: 'personal' } });
    assert.equal(legacy.status, 201, 'the older docs field app_name is accepted');
  });

  test('auth: required everywhere but regions; Bearer and FlyV1 both work', async () => {
    const anon = (path: string, headers: Record<string, string> = {}) => fetch(cluster.apiUrl + path, { headers });
    await expectError(await anon('/v1/apps?org_slug=personal'), 401, 'unauthenticated', /Authorization/);
    await expectError(await anon('/v1/apps?org_slug=personal', { authorization: 'Bearer wrong' }), 401, 'unauthenticated', /token/);
    await expectError(await anon('/v1/apps?org_slug=personal', { authorization: 'Basic abc' }), 401, 'unauthenticated', /Bearer/);
    assert.equal((await anon('/v1/apps?org_slug=personal', { authorization: `FlyV1 ${cluster.adminToken}` })).status, 200);
    assert.equal((await anon('/v1/apps?org_slug=personal', { authorization: `Bearer fm2_other,${cluster.adminToken}` })).status, 200);
    assert.equal((await anon('/v1/platform/regions')).status, 200);
  });
});
