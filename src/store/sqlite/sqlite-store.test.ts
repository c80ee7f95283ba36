import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { newAppId, newNonce, newUlid } from '../../core/ids.js';
import { machineRecord, runStoreConformance } from '../store.conformance.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteStore } from './sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'hangar-sqlite-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

runStoreConformance({
  name: 'sqlite (:memory:)',
  newStore: async () => {
    const store = new SqliteStore(':memory:');
    await store.migrate();
    return store;
  },
});

runStoreConformance({
  name: 'sqlite (file, closed and reopened)',
  newStore: async () => {
    // Each case gets a file that was created, migrated, closed and opened again, so it runs on a
    // store as a restarted server sees it.
    const path = join(dir, `conformance-${++files}.db`);
    const first = new SqliteStore(path);
    await first.migrate();
    await first.close();
    const store = new SqliteStore(path);
    await store.migrate();
    return store;
  },
});

describe('SqliteStore on a file', () => {
  test('data survives close and reopen', async () => {
    const path = join(dir, 'reopen.db');
    const store = new SqliteStore(path);
    await store.migrate();
    const org = await store.createOrg('personal', 'Personal');
    const token = await store.createToken({ id: 'tok', hash: 'f'.repeat(64), name: 'admin', org_id: null });
    const app = await store.createApp({ id: newAppId(), name: 'hello', org_id: org.id, network: 'default', status: 'deployed' });
    const host = await store.upsertHost({ id: 'host-1', region: 'ams', url: 'http://h1' });
    await store.setHostSeq('host-1', 7);
    const machine = machineRecord(app.id, { state: 'started', agent_seq: 7, cordoned: true });
    await store.insertMachine(machine);
    await store.insertVersion(machine.id, machine.version, machine.config, machine.created_at);
    const event = { id: newUlid(), type: 'start', status: 'started', source: 'flyd' as const, timestamp: Date.now() };
    await store.insertEvent(machine.id, event);
    const lease = { machine_id: machine.id, nonce: newNonce(), owner: 'me', description: '', expires_at: 2_000_000_000, version: newUlid() };
    await store.putLease(lease);
    await store.close();

    const reopened = new SqliteStore(path);
    await reopened.migrate();
    try {
      assert.deepEqual(await reopened.getOrgBySlug('personal'), org);
      assert.deepEqual(await reopened.findTokenByHash('f'.repeat(64)), token);
      assert.deepEqual(await reopened.getAppByName('hello'), app);
      assert.deepEqual(await reopened.getHost('host-1'), { ...host, last_seq: 7 });
      assert.deepEqual(await reopened.getMachine(machine.id), machine);
      assert.deepEqual(await reopened.listVersions(machine.id), [{ version: machine.version, config: machine.config, created_at: machine.created_at }]);
      assert.deepEqual(await reopened.listEvents(machine.id, 10), [event]);
      assert.deepEqual(await reopened.getLease(machine.id), lease);
      // The name is still taken after a restart.
      await assert.rejects(
        reopened.createApp({ id: newAppId(), name: 'hello', org_id: org.id, network: 'default', status: 'deployed' }),
        { code: 'name_taken' },
      );
    } finally {
      await reopened.close();
    }
  });

  test('migrate is idempotent: each migration is applied once', async () => {
    const path = join(dir, 'migrate.db');
    for (let i = 0; i < 3; i++) {
      const store = new SqliteStore(path);
      await store.migrate();
      await store.migrate();
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[];
      assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((_, i) => i + 1));
    } finally {
      db.close();
    }
  });

  test('deleting an app cascades through foreign keys after a reopen too', async () => {
    const path = join(dir, 'cascade.db');
    const store = new SqliteStore(path);
    await store.migrate();
    const org = await store.createOrg('personal', 'Personal');
    const app = await store.createApp({ id: newAppId(), name: 'hello', org_id: org.id, network: 'default', status: 'deployed' });
    const machine = machineRecord(app.id);
    await store.insertMachine(machine);
    await store.close();
    const reopened = new SqliteStore(path);
    try {
      await reopened.insertEvent(machine.id, { id: newUlid(), type: 'start', status: 'started', source: 'flyd', timestamp: 1 });
      await reopened.deleteApp(app.id);
      assert.equal(await reopened.getMachine(machine.id), undefined);
      assert.deepEqual(await reopened.listEvents(machine.id, 10), []);
    } finally {
      await reopened.close();
    }
  });
});
