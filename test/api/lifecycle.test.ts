/**
 * The whole machine lifecycle through the API server and a real agent (fake driver), with every
 * response checked against Fly's OpenAPI document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HangarError } from '../../src/core/errors.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';
import { rejectsWith } from '../../src/testkit/assertions.js';

const IMAGE = 'registry.example.test/hello:1.0';


describe('machine lifecycle', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
    await cluster.client.apps.create({ name: 'web', org_slug: 'personal' });
  });
  after(async () => {
    assert.deepEqual(cluster.contractProblems, [], 'every response matches the OpenAPI document');
    await cluster.close();
  });

  test('apps: create, get, list, name_taken', async () => {
    const app = await cluster.client.apps.get('web');
    assert.equal(app.name, 'web');
    assert.equal(app.organization.slug, 'personal');
    const list = await cluster.client.apps.list('personal');
    assert.ok(list.apps.some((a) => a.name === 'web'));
    assert.equal(list.total_apps, list.apps.length);
    await rejectsWith(cluster.client.apps.create({ name: 'web', org_slug: 'personal' }), 'name_taken', /already taken/);
  });

  test('create starts the machine; get reports Fly fields', async () => {
    const machine = await cluster.client.machines.create('web', { config: { image: IMAGE, env: { A: '1' } }, region: 'lcl' });
    assert.match(machine.id, /^[0-9a-f]{14}$/);
    assert.match(machine.version, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(machine.instance_id, machine.version);
    assert.equal(machine.state, 'started');
    assert.ok(machine.private_ip.length > 0, 'private_ip is assigned');
    assert.equal(machine.image_ref.registry, 'registry.example.test');
    assert.equal(machine.image_ref.repository, 'hello');
    assert.equal(machine.image_ref.tag, '1.0');
    assert.deepEqual(machine.config?.guest, { cpu_kind: 'shared', cpus: 1, memory_mb: 256 });
    const got = await cluster.client.machines.get('web', machine.id);
    assert.equal(got.host_status, 'ok');
    assert.ok((got.events ?? []).length >= 1);
    assert.ok(got.events!.every((e) => Number.isInteger(e.timestamp) && e.timestamp > 1e12), 'event timestamps are ms');
  });

  test('stop, wait, start, restart, suspend', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE } });
    await cluster.client.machines.stop('web', m.id, { signal: 'SIGTERM', timeout: '5s' });
    const waited = await cluster.client.machines.wait('web', m.id, { state: 'stopped', timeout: 5 });
    assert.equal(waited.ok, true);
    assert.equal(waited.state, 'stopped');
    const started = await cluster.client.machines.start('web', m.id);
    assert.equal(started.previous_state, 'stopped');
    await cluster.client.machines.wait('web', m.id, { state: 'started', timeout: 5 });
    await cluster.client.machines.restart('web', m.id, { signal: 'SIGINT' });
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'started');
    await cluster.client.machines.suspend('web', m.id);
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'suspended');
    await cluster.client.machines.start('web', m.id);
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'started');
    const events = await cluster.client.machines.events('web', m.id);
    for (let i = 1; i < events.length; i++) assert.ok(events[i - 1]!.id > events[i]!.id, 'events are newest first');
    assert.ok(events.some((e) => e.type === 'stop') && events.some((e) => e.type === 'start'));
  });

  test('illegal transitions are refused with a reason and change nothing', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE } });
    await rejectsWith(cluster.client.machines.start('web', m.id), 'failed_precondition', /from state 'started'/);
    await rejectsWith(cluster.client.machines.delete('web', m.id), 'failed_precondition', /force/);
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'started');
    await cluster.client.machines.delete('web', m.id, { force: true });
    const gone = await cluster.client.machines.get('web', m.id);
    assert.equal(gone.state, 'destroyed');
    await rejectsWith(cluster.client.machines.start('web', m.id), 'failed_precondition', /destroyed/);
    await rejectsWith(cluster.client.machines.wait('web', m.id, { state: 'started', timeout: 2 }), 'failed_precondition', /never reach/);
    const listed = await cluster.client.machines.list('web');
    assert.ok(!listed.some((x) => x.id === m.id), 'destroyed machines are not listed by default');
    const withDeleted = await cluster.client.machines.list('web', { include_deleted: true });
    assert.ok(withDeleted.some((x) => x.id === m.id));
  });

  test('update replaces the config, makes a new version, honours current_version and skip_launch', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE, env: { A: '1' } } });
    await rejectsWith(
      cluster.client.machines.update('web', m.id, { config: { image: IMAGE }, current_version: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }),
      'version_conflict',
      /current_version/,
    );
    const updated = await cluster.client.machines.update('web', m.id, { config: { image: `${IMAGE}-b`, env: { B: '2' } }, current_version: m.version });
    assert.notEqual(updated.version, m.version);
    assert.deepEqual(updated.config?.env, { B: '2' }, 'full replacement, not a merge');
    assert.equal(updated.state, 'started');
    const versions = await cluster.client.machines.versions('web', m.id);
    assert.equal(versions.length, 2);
    assert.equal(versions[0]!.version, updated.version);
    const skipped = await cluster.client.machines.update('web', m.id, { config: { image: IMAGE }, skip_launch: true });
    assert.notEqual(skipped.state, 'started');
  });

  test('skip_launch creates without starting', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE }, skip_launch: true });
    assert.equal(m.state, 'created');
    await cluster.client.machines.start('web', m.id);
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'started');
  });

  test('list filters: region, state, metadata, summary', async () => {
    await cluster.client.apps.create({ name: 'filters', org_slug: 'personal' });
    const a = await cluster.client.machines.create('filters', { config: { image: IMAGE, metadata: { role: 'db', tier: 'x' } } });
    const b = await cluster.client.machines.create('filters', { config: { image: IMAGE, metadata: { role: 'web' } }, skip_launch: true });
    assert.deepEqual((await cluster.client.machines.list('filters', { metadata: { role: 'db' } })).map((x) => x.id), [a.id]);
    assert.deepEqual((await cluster.client.machines.list('filters', { state: 'created' })).map((x) => x.id), [b.id]);
    assert.equal((await cluster.client.machines.list('filters', { region: 'zzz' })).length, 0);
    const summary = await cluster.client.machines.list('filters', { summary: true });
    assert.equal(summary.length, 2);
    assert.ok(summary.every((x) => x.config === undefined && x.events === undefined));
  });

  test('signals by name and number, exec with command and legacy cmd, ps', async () => {
    // The fake workload traps SIGUSR1 (as a real server with a handler would) and keeps running.
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE, metadata: { hangar_fake_trap_signals: 'SIGUSR1' } } });
    await cluster.client.machines.signal('web', m.id, 'SIGUSR1');
    await cluster.client.machines.signal('web', m.id, 10);
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'started');
    await rejectsWith(cluster.client.machines.signal('web', m.id, 'SIGNOPE'), 'invalid_argument', /signal/);
    const out = await cluster.client.machines.exec('web', m.id, { command: ['echo', 'hello', 'world'] });
    assert.equal(out.stdout, 'hello world\n');
    assert.equal(out.exit_code, 0);
    const legacy = await cluster.fetch(`/v1/apps/web/machines/${m.id}/exec`, { method: 'POST', json: { cmd: 'echo "a b"' } });
    assert.equal(legacy.status, 200);
    assert.equal(((await legacy.json()) as { stdout: string }).stdout, 'a b\n');
    const ps = await cluster.client.machines.ps('web', m.id);
    assert.ok(ps.length >= 1 && ps[0]!.pid > 0);
  });

  test('a signal the workload does not handle ends it; on-failure restarts it with an exit event', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE } });
    await cluster.client.machines.signal('web', m.id, 'SIGTERM');
    await cluster.client.machines.wait('web', m.id, { state: 'started', timeout: 10, from_event_id: (await cluster.client.machines.events('web', m.id))[0]!.id });
    const events = await cluster.client.machines.events('web', m.id);
    const exit = events.find((e) => e.type === 'exit');
    assert.ok(exit, 'an exit event was recorded');
    const exitEvent = (exit.request as { exit_event?: { signal?: number; exit_code?: number } }).exit_event;
    assert.equal(exitEvent?.signal, 15);
    assert.equal(exitEvent?.exit_code, 143);
  });

  test('cordon and uncordon', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE } });
    await cluster.client.machines.cordon('web', m.id);
    assert.equal((await cluster.client.machines.get('web', m.id)).cordoned, true);
    await cluster.client.machines.uncordon('web', m.id);
    assert.equal((await cluster.client.machines.get('web', m.id)).cordoned, false);
  });

  test('wait: timeout is 408, bad states are 400, settled matches', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE } });
    const err = await rejectsWith(cluster.client.machines.wait('web', m.id, { state: 'stopped', timeout: 1 }), 'timeout', /within 1s/);
    assert.equal((err as { responseStatus?: number }).responseStatus, 408);
    await rejectsWith(cluster.client.machines.wait('web', m.id, { state: 'sleeping' as never, timeout: 1 }), 'invalid_argument', /cannot wait/);
    const settled = await cluster.client.machines.wait('web', m.id, { state: 'settled', timeout: 1 });
    assert.equal(settled.state, 'started');
    // A wait that is satisfied later: stop while waiting.
    const pending = cluster.client.machines.wait('web', m.id, { state: 'stopped', timeout: 10 });
    await cluster.client.machines.stop('web', m.id);
    assert.equal((await pending).state, 'stopped');
  });

  test('two racing starts leave one clean state', async () => {
    const m = await cluster.client.machines.create('web', { config: { image: IMAGE }, skip_launch: true });
    const results = await Promise.allSettled([cluster.client.machines.start('web', m.id), cluster.client.machines.start('web', m.id)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((rejected.reason as HangarError).code, 'failed_precondition');
    assert.equal((await cluster.client.machines.get('web', m.id)).state, 'started');
  });

  test('org machines and regions', async () => {
    const org = await cluster.client.orgs.machines('personal');
    assert.ok(org.machines.length > 0);
    assert.ok(org.machines.every((m) => typeof m.app_name === 'string'));
    const regions = await cluster.client.platform.regions();
    assert.equal(regions.nearest, 'lcl');
    assert.ok(regions.regions.some((r) => r.code === 'lcl'));
  });

  test('app delete: refused with machines unless force', async () => {
    await cluster.client.apps.create({ name: 'doomed', org_slug: 'personal' });
    await cluster.client.machines.create('doomed', { config: { image: IMAGE } });
    await rejectsWith(cluster.client.apps.delete('doomed'), 'failed_precondition', /force/);
    await cluster.client.apps.delete('doomed', { force: true });
    await rejectsWith(cluster.client.apps.get('doomed'), 'not_found', /not found/);
  });
});
