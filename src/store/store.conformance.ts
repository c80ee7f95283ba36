/**
 * The one suite every `Store` backend passes (Hono's `common.case.test.ts` habit). Each backend's
 * test file calls `runStoreConformance` with a factory that answers a fresh, migrated, empty store;
 * every case gets its own store and closes it. A backend that cannot pass a case lists it in `skip`
 * with the reason, and the reason shows up in the test output.
 *
 * The suite checks behaviour the interface promises, not one backend's choices: list order is
 * asserted only where `store.ts` states it (versions and events newest first).
 * @module
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageRef, MachineConfig, MachineEvent } from '../api-types/machine.js';
import { HangarError } from '../core/errors.js';
import { newAppId, newMachineId, newNonce, newUlid } from '../core/ids.js';
import { EVENTS_KEPT_PER_MACHINE, type AppRecord, type MachineRecord, type OrgRecord, type Store } from './store.js';

export const STORE_CONFORMANCE_TESTS = [
  'migrate can run again on a migrated store',
  'orgs are created and found by slug and by id',
  'tokens are found by hash, for an org or for every org',
  'apps are created and found by name and by id, and listed per org',
  'an app name that exists is name_taken',
  'deleteApp removes the app with its machines, versions, events and leases',
  'countLiveMachines counts machines that are not destroyed, per app',
  'upsertHost inserts, then updates region and url and keeps last_seq',
  'setHostSeq only ever increases last_seq',
  'insertMachine and getMachine round-trip every field',
  'purgeMachine removes a machine',
  'listMachines lists the app\'s machines and hides destroyed ones unless asked',
  'listMachines filters by region, states and metadata (all must hold)',
  'listOrgMachines lists the machines of every app of the org, with app_name',
  'setMachineConfig replaces config, version and image_ref and keeps runtime fields',
  'setMachineMetadata replaces only config.metadata',
  'setCordoned sets and clears cordoned',
  'applyRuntime applies newer changes only and says whether it did',
  'applyRuntime replaces check statuses when a change carries them and keeps them otherwise',
  'versions are listed newest first, per machine',
  'events are listed newest first, a duplicate id is ignored, limit holds',
  'leases are put, read, replaced and deleted',
  'findLiveMachineByName finds live machines only, per app',
  'listOrgs lists every organization',
  'listRecentEventsOfApp gives each machine its newest events',
  'a machine keeps only its newest EVENTS_KEPT_PER_MACHINE events',
] as const;
export type StoreConformanceTest = (typeof STORE_CONFORMANCE_TESTS)[number];

export interface StoreConformanceOptions {
  name: string;
  /** A fresh, migrated, empty store; the suite closes it. */
  newStore: () => Promise<Store>;
  skip?: { reason: string; tests: StoreConformanceTest[] }[];
}

/** A valid machine record for tests to tweak (nomad's `mock.*()` habit). */
export function machineRecord(appId: string, overrides: Partial<MachineRecord> = {}): MachineRecord {
  const id = overrides.id ?? newMachineId();
  const now = new Date().toISOString();
  return {
    id,
    app_id: appId,
    name: `m-${id}`,
    region: 'ams',
    host_id: 'host-1',
    state: 'created',
    version: newUlid(),
    config: { image: 'nginx:1.27', guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 }, metadata: {} },
    private_ip: 'fdaa:0:1::2',
    image_ref: imageRef('1.27'),
    cordoned: false,
    agent_seq: 0,
    created_at: now,
    updated_at: now,
    ...overrides,
  };
}

function imageRef(tag: string): ImageRef {
  return { registry: 'registry-1.docker.io', repository: 'library/nginx', tag, digest: '', labels: {} };
}

function event(overrides: Partial<MachineEvent> = {}): MachineEvent {
  return { id: newUlid(), type: 'start', status: 'started', source: 'flyd', timestamp: Date.now(), ...overrides };
}

async function orgAndApp(store: Store, slug = 'personal', appName = 'hello'): Promise<{ org: OrgRecord; app: AppRecord }> {
  const org = (await store.getOrgBySlug(slug)) ?? (await store.createOrg(slug, `${slug} org`));
  const app = await store.createApp({ id: newAppId(), name: appName, org_id: org.id, network: 'default', status: 'deployed' });
  return { org, app };
}

const ids = (machines: { id: string }[]) => machines.map((m) => m.id).sort();

const CASES: Record<StoreConformanceTest, (store: Store) => Promise<void>> = {
  async 'listOrgs lists every organization'(store) {
    const a = await store.createOrg('alpha', 'Alpha');
    const b = await store.createOrg('beta', 'Beta');
    assert.deepEqual((await store.listOrgs()).map((o) => o.slug), [a.slug, b.slug]);
  },

  async 'findLiveMachineByName finds live machines only, per app'(store) {
    const { app } = await orgAndApp(store, 'personal', 'a');
    const { app: other } = await orgAndApp(store, 'personal', 'b');
    const live = machineRecord(app.id, { name: 'web-1' });
    const dead = machineRecord(app.id, { name: 'web-2', state: 'destroyed' });
    await store.insertMachine(live);
    await store.insertMachine(dead);
    await store.insertMachine(machineRecord(other.id, { name: 'web-3' }));
    assert.equal((await store.findLiveMachineByName(app.id, 'web-1'))?.id, live.id);
    assert.equal(await store.findLiveMachineByName(app.id, 'web-2'), undefined);
    assert.equal(await store.findLiveMachineByName(app.id, 'web-3'), undefined);
  },

  async 'listRecentEventsOfApp gives each machine its newest events'(store) {
    const { app } = await orgAndApp(store, 'personal', 'a');
    const { app: other } = await orgAndApp(store, 'personal', 'b');
    const a = machineRecord(app.id);
    const b = machineRecord(app.id);
    const c = machineRecord(other.id);
    for (const m of [a, b, c]) await store.insertMachine(m);
    const event = (n: number) => ({ id: newUlid(Date.now() + n), type: 'start', status: 'started', source: 'flyd' as const, timestamp: Date.now() + n });
    const aEvents = [event(1), event(2), event(3)];
    for (const e of aEvents) await store.insertEvent(a.id, e);
    await store.insertEvent(b.id, event(4));
    await store.insertEvent(c.id, event(5));
    const recent = await store.listRecentEventsOfApp(app.id, 2);
    assert.deepEqual(recent.get(a.id)?.map((e) => e.id), [aEvents[2]!.id, aEvents[1]!.id]);
    assert.equal(recent.get(b.id)?.length, 1);
    assert.equal(recent.has(c.id), false);
  },

  async 'migrate can run again on a migrated store'(store) {
    await store.migrate();
    await store.migrate();
    const org = await store.createOrg('personal', 'Personal');
    assert.deepEqual(await store.getOrgById(org.id), org);
  },

  async 'orgs are created and found by slug and by id'(store) {
    const a = await store.createOrg('personal', 'Personal');
    const b = await store.createOrg('acme', 'Acme Inc');
    assert.notEqual(a.id, b.id);
    assert.equal(a.slug, 'personal');
    assert.equal(a.name, 'Personal');
    assert.ok(!Number.isNaN(Date.parse(a.created_at)), 'created_at is a timestamp');
    assert.deepEqual(await store.getOrgBySlug('acme'), b);
    assert.deepEqual(await store.getOrgById(a.id), a);
    assert.equal(await store.getOrgBySlug('nope'), undefined);
    assert.equal(await store.getOrgById(b.id + 1000), undefined);
  },

  async 'tokens are found by hash, for an org or for every org'(store) {
    const org = await store.createOrg('personal', 'Personal');
    const scoped = await store.createToken({ id: 'tok1', hash: 'a'.repeat(64), name: 'deploy', org_id: org.id });
    const admin = await store.createToken({ id: 'tok2', hash: 'b'.repeat(64), name: 'admin', org_id: null });
    assert.equal(scoped.org_id, org.id);
    assert.ok(!Number.isNaN(Date.parse(scoped.created_at)));
    assert.deepEqual(await store.findTokenByHash('a'.repeat(64)), scoped);
    assert.deepEqual(await store.findTokenByHash('b'.repeat(64)), admin);
    assert.equal((await store.findTokenByHash('b'.repeat(64)))?.org_id, null);
    assert.equal(await store.findTokenByHash('c'.repeat(64)), undefined);
  },

  async 'apps are created and found by name and by id, and listed per org'(store) {
    const personal = await store.createOrg('personal', 'Personal');
    const acme = await store.createOrg('acme', 'Acme');
    const zeta = await store.createApp({ id: newAppId(), name: 'zeta', org_id: personal.id, network: 'default', status: 'deployed' });
    const alpha = await store.createApp({ id: newAppId(), name: 'alpha', org_id: personal.id, network: 'default', status: 'pending' });
    const other = await store.createApp({ id: newAppId(), name: 'other', org_id: acme.id, network: 'custom', status: 'deployed' });
    assert.equal(zeta.name, 'zeta');
    assert.equal(zeta.org_id, personal.id);
    assert.equal(zeta.network, 'default');
    assert.ok(Number.isInteger(zeta.numeric_id));
    assert.equal(new Set([zeta.numeric_id, alpha.numeric_id, other.numeric_id]).size, 3, 'numeric ids are unique');
    assert.ok(!Number.isNaN(Date.parse(zeta.created_at)));
    assert.deepEqual(await store.getAppByName('alpha'), alpha);
    assert.deepEqual(await store.getAppById(other.id), other);
    assert.equal(await store.getAppByName('missing'), undefined);
    assert.equal(await store.getAppById('missing'), undefined);
    assert.deepEqual((await store.listApps(personal.id)).map((a) => a.name).sort(), ['alpha', 'zeta']);
    assert.deepEqual(await store.listApps(acme.id), [other]);
    assert.deepEqual(await store.listApps(personal.id + acme.id + 1000), []);
  },

  async 'an app name that exists is name_taken'(store) {
    const personal = await store.createOrg('personal', 'Personal');
    const acme = await store.createOrg('acme', 'Acme');
    await store.createApp({ id: newAppId(), name: 'hello', org_id: personal.id, network: 'default', status: 'deployed' });
    for (const orgId of [personal.id, acme.id]) {
      await assert.rejects(
        store.createApp({ id: newAppId(), name: 'hello', org_id: orgId, network: 'default', status: 'deployed' }),
        (err: unknown) => {
          assert.ok(err instanceof HangarError, 'expected a HangarError');
          assert.equal(err.code, 'name_taken');
          assert.match(err.message, /hello/);
          return true;
        },
      );
    }
    assert.equal((await store.listApps(acme.id)).length, 0);
  },

  async 'deleteApp removes the app with its machines, versions, events and leases'(store) {
    const { org, app } = await orgAndApp(store, 'personal', 'doomed');
    const { app: kept } = await orgAndApp(store, 'personal', 'kept');
    const gone = machineRecord(app.id);
    const stays = machineRecord(kept.id);
    for (const m of [gone, stays]) {
      await store.insertMachine(m);
      await store.insertVersion(m.id, m.version, m.config, m.created_at);
      await store.insertEvent(m.id, event());
      await store.putLease({ machine_id: m.id, nonce: newNonce(), owner: 'me@example.com', description: '', expires_at: 2_000_000_000, version: newUlid() });
    }
    await store.deleteApp(app.id);
    assert.equal(await store.getAppById(app.id), undefined);
    assert.equal(await store.getAppByName('doomed'), undefined);
    assert.equal(await store.getMachine(gone.id), undefined);
    assert.deepEqual(await store.listVersions(gone.id), []);
    assert.deepEqual(await store.listEvents(gone.id, 10), []);
    assert.equal(await store.getLease(gone.id), undefined);
    assert.deepEqual(ids(await store.listOrgMachines(org.id, { includeDeleted: true })), [stays.id]);
    // The other app is untouched.
    assert.ok(await store.getMachine(stays.id));
    assert.equal((await store.listVersions(stays.id)).length, 1);
    assert.equal((await store.listEvents(stays.id, 10)).length, 1);
    assert.ok(await store.getLease(stays.id));
    // The name is free again.
    await store.createApp({ id: newAppId(), name: 'doomed', org_id: org.id, network: 'default', status: 'deployed' });
    await store.deleteApp('no-such-app');
  },

  async 'countLiveMachines counts machines that are not destroyed, per app'(store) {
    const { app: a } = await orgAndApp(store, 'personal', 'a');
    const { app: b } = await orgAndApp(store, 'personal', 'b');
    const { app: empty } = await orgAndApp(store, 'personal', 'empty');
    for (const state of ['created', 'started', 'stopped', 'destroyed', 'destroyed']) await store.insertMachine(machineRecord(a.id, { state }));
    await store.insertMachine(machineRecord(b.id, { state: 'failed' }));
    const counts = await store.countLiveMachines([a.id, b.id, empty.id]);
    assert.equal(counts.get(a.id), 3);
    assert.equal(counts.get(b.id), 1);
    assert.equal(counts.get(empty.id) ?? 0, 0);
    assert.equal((await store.countLiveMachines([])).size, 0);
  },

  async 'upsertHost inserts, then updates region and url and keeps last_seq'(store) {
    const first = await store.upsertHost({ id: 'host-1', region: 'ams', url: 'http://10.0.0.1:4280' });
    assert.equal(first.id, 'host-1');
    assert.equal(first.region, 'ams');
    assert.equal(first.url, 'http://10.0.0.1:4280');
    assert.equal(first.last_seq, 0);
    assert.ok(!Number.isNaN(Date.parse(first.updated_at)));
    await store.setHostSeq('host-1', 42);
    const second = await store.upsertHost({ id: 'host-1', region: 'fra', url: 'http://10.0.0.9:4280' });
    assert.equal(second.region, 'fra');
    assert.equal(second.url, 'http://10.0.0.9:4280');
    assert.equal(second.last_seq, 42);
    await store.upsertHost({ id: 'host-2', region: 'ams', url: 'http://10.0.0.2:4280' });
    assert.deepEqual((await store.listHosts()).map((h) => h.id).sort(), ['host-1', 'host-2']);
    assert.deepEqual(await store.getHost('host-1'), second);
    assert.equal(await store.getHost('host-3'), undefined);
  },

  async 'setHostSeq only ever increases last_seq'(store) {
    await store.upsertHost({ id: 'host-1', region: 'ams', url: 'http://h1' });
    await store.setHostSeq('host-1', 10);
    assert.equal((await store.getHost('host-1'))?.last_seq, 10);
    await store.setHostSeq('host-1', 5);
    assert.equal((await store.getHost('host-1'))?.last_seq, 10);
    await store.setHostSeq('host-1', 10);
    assert.equal((await store.getHost('host-1'))?.last_seq, 10);
    await store.setHostSeq('host-1', 11);
    assert.equal((await store.getHost('host-1'))?.last_seq, 11);
    await store.setHostSeq('no-such-host', 3);
    assert.equal(await store.getHost('no-such-host'), undefined);
  },

  async 'insertMachine and getMachine round-trip every field'(store) {
    const { app } = await orgAndApp(store);
    const config: MachineConfig = {
      image: 'registry.example.test/web:2',
      env: { PORT: '8080', EMPTY: '' },
      guest: { cpu_kind: 'performance', cpus: 2, memory_mb: 4096 },
      metadata: { role: 'web', 'fly_process_group': 'app' },
      services: [{ protocol: 'tcp', internal_port: 8080, autostop: 'stop', ports: [{ port: 443, handlers: ['tls', 'http'] }] }],
      restart: { policy: 'on-failure', max_retries: 3 },
      files: [{ guest_path: '/etc/motd', raw_value: 'aGk=' }],
      stop_config: { signal: 'SIGINT', timeout: '30s' },
      auto_destroy: true,
    };
    const machine = machineRecord(app.id, {
      name: 'web-1', region: 'fra', host_id: 'host-9', state: 'started', config, private_ip: 'fdaa:0:1:a7b:1::7',
      image_ref: { registry: 'registry.example.test', repository: 'web', tag: '2', digest: 'sha256:abc', labels: { a: 'b' } },
      cordoned: true, agent_seq: 17, created_at: '2025-01-02T03:04:05.000Z', updated_at: '2025-01-02T03:04:06.000Z',
    });
    await store.insertMachine(machine);
    assert.deepEqual(await store.getMachine(machine.id), machine);
    assert.equal(await store.getMachine(newMachineId()), undefined);
    const plain = machineRecord(app.id);
    await store.insertMachine(plain);
    assert.equal((await store.getMachine(plain.id))?.cordoned, false);
  },

  async 'purgeMachine removes a machine'(store) {
    const { app } = await orgAndApp(store);
    const a = machineRecord(app.id);
    const b = machineRecord(app.id);
    await store.insertMachine(a);
    await store.insertMachine(b);
    await store.purgeMachine(a.id);
    assert.equal(await store.getMachine(a.id), undefined);
    assert.deepEqual(ids(await store.listMachines(app.id, { includeDeleted: true })), [b.id]);
    await store.purgeMachine(a.id);
  },

  async 'listMachines lists the app\'s machines and hides destroyed ones unless asked'(store) {
    const { app } = await orgAndApp(store, 'personal', 'a');
    const { app: other } = await orgAndApp(store, 'personal', 'b');
    const live = machineRecord(app.id, { state: 'started' });
    const stopped = machineRecord(app.id, { state: 'stopped' });
    const destroyed = machineRecord(app.id, { state: 'destroyed' });
    for (const m of [live, stopped, destroyed, machineRecord(other.id)]) await store.insertMachine(m);
    assert.deepEqual(ids(await store.listMachines(app.id)), ids([live, stopped]));
    assert.deepEqual(ids(await store.listMachines(app.id, {})), ids([live, stopped]));
    assert.deepEqual(ids(await store.listMachines(app.id, { includeDeleted: true })), ids([live, stopped, destroyed]));
    assert.deepEqual(ids(await store.listMachines(app.id, { states: ['destroyed'] })), [destroyed.id]);
    assert.deepEqual(await store.listMachines('no-such-app'), []);
    assert.deepEqual(await store.listMachines(app.id, { states: [] }), await store.listMachines(app.id));
  },

  async 'listMachines filters by region, states and metadata (all must hold)'(store) {
    const { app } = await orgAndApp(store);
    const meta = (metadata: Record<string, string>) => ({ image: 'nginx', metadata });
    const a = machineRecord(app.id, { region: 'ams', state: 'started', config: meta({ role: 'web', tier: 'front' }) });
    const b = machineRecord(app.id, { region: 'ams', state: 'stopped', config: meta({ role: 'web' }) });
    const c = machineRecord(app.id, { region: 'fra', state: 'started', config: meta({ role: 'worker', tier: 'front' }) });
    const d = machineRecord(app.id, { region: 'fra', state: 'started', config: { image: 'nginx' } });
    for (const m of [a, b, c, d]) await store.insertMachine(m);
    assert.deepEqual(ids(await store.listMachines(app.id, { region: 'ams' })), ids([a, b]));
    assert.deepEqual(ids(await store.listMachines(app.id, { region: 'syd' })), []);
    assert.deepEqual(ids(await store.listMachines(app.id, { states: ['started'] })), ids([a, c, d]));
    assert.deepEqual(ids(await store.listMachines(app.id, { states: ['started', 'stopped'] })), ids([a, b, c, d]));
    assert.deepEqual(ids(await store.listMachines(app.id, { metadata: { role: 'web' } })), ids([a, b]));
    assert.deepEqual(ids(await store.listMachines(app.id, { metadata: { role: 'web', tier: 'front' } })), [a.id]);
    assert.deepEqual(ids(await store.listMachines(app.id, { metadata: { tier: 'front' } })), ids([a, c]));
    assert.deepEqual(ids(await store.listMachines(app.id, { metadata: { role: 'db' } })), []);
    assert.deepEqual(ids(await store.listMachines(app.id, { region: 'ams', states: ['stopped'], metadata: { role: 'web' } })), [b.id]);
    assert.deepEqual(ids(await store.listMachines(app.id, { region: 'fra', metadata: { role: 'web' } })), []);
  },

  async 'listOrgMachines lists the machines of every app of the org, with app_name'(store) {
    const { org, app: web } = await orgAndApp(store, 'personal', 'web');
    const { app: api } = await orgAndApp(store, 'personal', 'api');
    const { org: acme, app: foreign } = await orgAndApp(store, 'acme', 'foreign');
    const w = machineRecord(web.id, { region: 'ams' });
    const x = machineRecord(api.id, { region: 'fra', config: { image: 'nginx', metadata: { role: 'api' } } });
    const gone = machineRecord(api.id, { state: 'destroyed' });
    const f = machineRecord(foreign.id);
    for (const m of [w, x, gone, f]) await store.insertMachine(m);
    const all = await store.listOrgMachines(org.id);
    assert.deepEqual(ids(all), ids([w, x]));
    assert.equal(all.find((m) => m.id === w.id)?.app_name, 'web');
    assert.equal(all.find((m) => m.id === x.id)?.app_name, 'api');
    assert.deepEqual({ ...all.find((m) => m.id === x.id), app_name: undefined }, { ...x, app_name: undefined });
    assert.deepEqual(ids(await store.listOrgMachines(org.id, { includeDeleted: true })), ids([w, x, gone]));
    assert.deepEqual(ids(await store.listOrgMachines(org.id, { region: 'fra' })), [x.id]);
    assert.deepEqual(ids(await store.listOrgMachines(org.id, { metadata: { role: 'api' } })), [x.id]);
    assert.deepEqual(ids(await store.listOrgMachines(acme.id)), [f.id]);
  },

  async 'setMachineConfig replaces config, version and image_ref and keeps runtime fields'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id, { state: 'started', agent_seq: 5, private_ip: 'fdaa::5', cordoned: true });
    await store.insertMachine(m);
    const config: MachineConfig = { image: 'nginx:1.28', env: { A: '1' } };
    const version = newUlid();
    await store.setMachineConfig(m.id, config, version, imageRef('1.28'), '2030-01-01T00:00:00.000Z');
    assert.deepEqual(await store.getMachine(m.id), {
      ...m, config, version, image_ref: imageRef('1.28'), updated_at: '2030-01-01T00:00:00.000Z',
    });
  },

  async 'setMachineMetadata replaces only config.metadata'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id, { config: { image: 'nginx', env: { A: '1' }, metadata: { old: 'x', keep: 'no' } } });
    await store.insertMachine(m);
    await store.setMachineMetadata(m.id, { role: 'web', keep: 'yes' }, '2030-01-01T00:00:00.000Z');
    const after = await store.getMachine(m.id);
    assert.deepEqual(after, {
      ...m, config: { image: 'nginx', env: { A: '1' }, metadata: { role: 'web', keep: 'yes' } }, updated_at: '2030-01-01T00:00:00.000Z',
    });
    assert.equal(after?.version, m.version, 'metadata changes make no new version');
    assert.deepEqual(ids(await store.listMachines(app.id, { metadata: { role: 'web' } })), [m.id]);
    assert.deepEqual(await store.listMachines(app.id, { metadata: { old: 'x' } }), []);
    await store.setMachineMetadata(m.id, {}, '2030-01-02T00:00:00.000Z');
    assert.deepEqual((await store.getMachine(m.id))?.config.metadata, {});
    await store.setMachineMetadata(newMachineId(), { a: 'b' }, '2030-01-02T00:00:00.000Z');
  },

  async 'setCordoned sets and clears cordoned'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id);
    await store.insertMachine(m);
    await store.setCordoned(m.id, true, '2030-01-01T00:00:00.000Z');
    assert.deepEqual(await store.getMachine(m.id), { ...m, cordoned: true, updated_at: '2030-01-01T00:00:00.000Z' });
    await store.setCordoned(m.id, false, '2030-01-02T00:00:00.000Z');
    assert.equal((await store.getMachine(m.id))?.cordoned, false);
  },

  async 'applyRuntime applies newer changes only and says whether it did'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id, { state: 'created', agent_seq: 3, private_ip: '' });
    await store.insertMachine(m);
    const update = (agent_seq: number, state: string) => ({ state, private_ip: 'fdaa::9', agent_seq, updated_at: `2030-01-01T00:00:${String(agent_seq).padStart(2, '0')}.000Z` });

    assert.equal(await store.applyRuntime(m.id, update(4, 'started')), true);
    assert.deepEqual(await store.getMachine(m.id), { ...m, state: 'started', private_ip: 'fdaa::9', agent_seq: 4, updated_at: '2030-01-01T00:00:04.000Z' });

    assert.equal(await store.applyRuntime(m.id, update(4, 'stopped')), false, 'an equal seq is ignored');
    assert.equal(await store.applyRuntime(m.id, update(2, 'stopped')), false, 'an older seq is ignored');
    assert.equal((await store.getMachine(m.id))?.state, 'started');
    assert.equal((await store.getMachine(m.id))?.agent_seq, 4);

    assert.equal(await store.applyRuntime(m.id, update(10, 'stopped')), true, 'seqs may skip');
    assert.equal((await store.getMachine(m.id))?.state, 'stopped');
    assert.equal(await store.applyRuntime(newMachineId(), update(99, 'started')), false, 'an unknown machine');
  },

  async 'applyRuntime replaces check statuses when a change carries them and keeps them otherwise'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id, { state: 'started', agent_seq: 1 });
    await store.insertMachine(m);
    assert.equal((await store.getMachine(m.id))?.checks, undefined, 'none until reported');
    const base = { state: 'started', private_ip: m.private_ip, updated_at: '2030-01-01T00:00:00.000Z' };
    const passing = [{ name: 'servicecheck-00-http-8080', status: 'passing' as const, output: 'HTTP GET /: 200 OK', updated_at: '2030-01-01T00:00:02.000Z' }];
    assert.equal(await store.applyRuntime(m.id, { ...base, agent_seq: 2, checks: passing }), true);
    assert.deepEqual((await store.getMachine(m.id))?.checks, passing);
    assert.equal(await store.applyRuntime(m.id, { ...base, agent_seq: 3 }), true);
    assert.deepEqual((await store.getMachine(m.id))?.checks, passing, 'a change without checks keeps them');
    const critical = [{ ...passing[0]!, status: 'critical' as const, output: 'HTTP GET /: connect ECONNREFUSED' }];
    assert.equal(await store.applyRuntime(m.id, { ...base, agent_seq: 3, checks: critical }), false, 'an old change does not touch them');
    assert.deepEqual((await store.getMachine(m.id))?.checks, passing);
    assert.equal(await store.applyRuntime(m.id, { ...base, state: 'stopping', agent_seq: 4, checks: [] }), true);
    assert.deepEqual((await store.getMachine(m.id))?.checks, [], 'an empty list clears them');
    const [listed] = await store.listMachines(app.id);
    assert.deepEqual(listed?.checks, []);
    // insertMachine keeps them too (round trip).
    const other = machineRecord(app.id, { checks: passing });
    await store.insertMachine(other);
    assert.deepEqual((await store.getMachine(other.id))?.checks, passing);
  },

  async 'versions are listed newest first, per machine'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id);
    const other = machineRecord(app.id);
    await store.insertMachine(m);
    await store.insertMachine(other);
    const versions = [newUlid(), newUlid(), newUlid()];
    for (const [i, version] of versions.entries()) {
      await store.insertVersion(m.id, version, { image: `nginx:${i}` }, `2030-01-01T00:00:0${i}.000Z`);
    }
    await store.insertVersion(other.id, newUlid(), { image: 'other' }, '2030-01-01T00:00:00.000Z');
    assert.deepEqual(await store.listVersions(m.id), [
      { version: versions[2], config: { image: 'nginx:2' }, created_at: '2030-01-01T00:00:02.000Z' },
      { version: versions[1], config: { image: 'nginx:1' }, created_at: '2030-01-01T00:00:01.000Z' },
      { version: versions[0], config: { image: 'nginx:0' }, created_at: '2030-01-01T00:00:00.000Z' },
    ]);
    assert.equal((await store.listVersions(other.id)).length, 1);
    assert.deepEqual(await store.listVersions(newMachineId()), []);
  },

  async 'a machine keeps only its newest EVENTS_KEPT_PER_MACHINE events'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id);
    const other = machineRecord(app.id);
    await store.insertMachine(m);
    await store.insertMachine(other);
    await store.insertEvent(other.id, event());
    const base = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < EVENTS_KEPT_PER_MACHINE + 5; i++) {
      const e = event({ id: newUlid(base + i), timestamp: base + i });
      ids.push(e.id);
      await store.insertEvent(m.id, e);
      if (i === 3) await store.insertEvent(m.id, e); // a duplicate counts once
    }
    const kept = await store.listEvents(m.id, EVENTS_KEPT_PER_MACHINE + 100);
    assert.equal(kept.length, EVENTS_KEPT_PER_MACHINE);
    assert.deepEqual(kept.map((e) => e.id), ids.slice(5).reverse());
    assert.equal((await store.listEvents(other.id, 10)).length, 1, 'other machines keep theirs');
    // A replayed event older than the kept ones does not push a newer one out.
    await store.insertEvent(m.id, event({ id: ids[0]!, timestamp: base }));
    assert.deepEqual((await store.listEvents(m.id, EVENTS_KEPT_PER_MACHINE + 100)).map((e) => e.id), ids.slice(5).reverse());
  },

  async 'events are listed newest first, a duplicate id is ignored, limit holds'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id);
    const other = machineRecord(app.id);
    await store.insertMachine(m);
    await store.insertMachine(other);
    const events = [
      event({ type: 'launch', status: 'created', source: 'user', request: { config: { image: 'nginx' } } }),
      event({ type: 'start', status: 'started' }),
      event({ type: 'exit', status: 'stopped', request: { exit_event: { exit_code: 0, oom_killed: false } } }),
    ];
    for (const e of events) await store.insertEvent(m.id, e);
    await store.insertEvent(m.id, { ...events[1]!, type: 'changed', status: 'changed' });
    await store.insertEvent(other.id, event());
    assert.deepEqual(await store.listEvents(m.id, 10), [...events].reverse());
    assert.deepEqual(await store.listEvents(m.id, 2), [events[2], events[1]]);
    assert.deepEqual(await store.listEvents(m.id, 1), [events[2]]);
    assert.equal((await store.listEvents(other.id, 10)).length, 1);
    assert.deepEqual(await store.listEvents(newMachineId(), 10), []);
    const listed = await store.listEvents(m.id, 10);
    assert.equal('request' in listed[1]!, false, 'an event without request has none');
  },

  async 'leases are put, read, replaced and deleted'(store) {
    const { app } = await orgAndApp(store);
    const m = machineRecord(app.id);
    const other = machineRecord(app.id);
    await store.insertMachine(m);
    await store.insertMachine(other);
    assert.equal(await store.getLease(m.id), undefined);
    const lease = { machine_id: m.id, nonce: newNonce(), owner: 'me@example.com', description: 'deploy', expires_at: 2_000_000_000, version: newUlid() };
    await store.putLease(lease);
    assert.deepEqual(await store.getLease(m.id), lease);
    assert.equal(await store.getLease(other.id), undefined);
    const renewed = { ...lease, nonce: newNonce(), description: 'renewed', expires_at: 2_000_000_600, version: newUlid() };
    await store.putLease(renewed);
    assert.deepEqual(await store.getLease(m.id), renewed);
    await store.deleteLease(m.id);
    assert.equal(await store.getLease(m.id), undefined);
    await store.deleteLease(m.id);
  },
};

export function runStoreConformance(options: StoreConformanceOptions): void {
  const skipped = new Map<string, string>();
  for (const entry of options.skip ?? []) for (const name of entry.tests) skipped.set(name, entry.reason);

  describe(`store conformance: ${options.name}`, () => {
    for (const name of STORE_CONFORMANCE_TESTS) {
      const reason = skipped.get(name);
      test(name, reason ? { skip: reason } : {}, async () => {
        const store = await options.newStore();
        try {
          await CASES[name](store);
        } finally {
          await store.close();
        }
      });
    }
  });
}
