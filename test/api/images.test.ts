/**
 * Image routes through the API server and agents, without containers: a fake driver that stores
 * what it is given stands in for the image store (the crun path is `images-crun.test.ts`). Checks
 * the streaming pass-through (one host) and spooling (two hosts), gzip, region choice, the 400s for
 * bodies that are not image archives, 413, 412 on a driver without images, 503 with no hosts, auth.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import type { ImageGcOptions, StoredImage } from '../../src/agent/drivers/driver.js';
import { FakeDriver } from '../../src/agent/drivers/fake/fake-driver.js';
import { HangarError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { createApiServer } from '../../src/server/create-server.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';
import { createTar } from '../../src/testkit/tar.js';

/** A fake driver with an "image store": it keeps the sha256 of each archive under its name. */
class ImageFakeDriver extends FakeDriver {
  readonly stored = new Map<string, StoredImage>();
  async importImage(file: string, name?: string) {
    const bytes = readFileSync(file);
    const text = bytes.toString('latin1');
    if (!text.includes('oci-layout') && !text.includes('manifest.json')) {
      throw new HangarError('invalid_argument', `${file} is neither an OCI layout archive nor a docker-archive`);
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const image = { name: name ?? 'docker.io/library/own:latest', digest, source: 'import', stored_at: new Date().toISOString() };
    this.stored.set(image.name, image);
    return { name: image.name, digest };
  }
  async listImages() {
    return [...this.stored.values()];
  }
  async gcImages(options: ImageGcOptions) {
    const removed: string[] = [];
    for (const name of this.stored.keys()) {
      if (!options.keepNames.includes(name)) {
        this.stored.delete(name);
        removed.push(`name ${name}`);
      }
    }
    return { removed };
  }
}

const ociTar = createTar([
  { type: 'file', path: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
  { type: 'file', path: 'index.json', data: '{"schemaVersion":2,"manifests":[]}' },
]);

describe('images through the API (fake image store)', () => {
  let cluster: TestCluster;
  let dir: string;
  const drivers: ImageFakeDriver[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-images-api-'));
    cluster = await startCluster({
      hosts: ['ams', 'ams', 'fra'],
      newDriver: (hostId) => {
        const d = new ImageFakeDriver({ hostId });
        drivers.push(d);
        return d;
      },
    });
  });
  after(async () => {
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  test('a file goes to one region (piped through) or every host (spooled), gzip is unpacked first', async () => {
    const file = join(dir, 'app.tar');
    writeFileSync(file, ociTar);
    const fra = await cluster.client.images.import(file, { name: 'docker.io/library/app:1', region: 'fra' });
    assert.deepEqual(fra.hosts.map((h) => h.region), ['fra']);
    assert.equal(fra.digest, sha(ociTar));
    assert.equal(drivers.filter((d) => d.stored.size > 0).length, 1);

    const gz = join(dir, 'app.tar.gz');
    writeFileSync(gz, gzipSync(ociTar));
    const all = await cluster.client.images.import(gz, { name: 'docker.io/library/app:2' });
    assert.equal(all.hosts.length, 3);
    assert.ok(all.hosts.every((h) => h.digest === sha(ociTar)), 'every host got the gunzipped archive');

    const list = await cluster.client.images.list();
    assert.equal(list.hosts.length, 3);
    const names = list.hosts.map((h) => h.images.map((i) => i.name).sort().join(','));
    assert.deepEqual(names.sort(), ['docker.io/library/app:1,docker.io/library/app:2', 'docker.io/library/app:2', 'docker.io/library/app:2']);
    assert.deepEqual((await cluster.client.images.list({ region: 'fra' })).hosts.map((h) => h.region), ['fra']);
  });

  test('a stream body works too', async () => {
    async function* chunks() {
      for (let i = 0; i < ociTar.length; i += 1000) yield ociTar.subarray(i, i + 1000);
    }
    const r = await cluster.client.images.import(chunks(), { name: 'docker.io/library/streamed:1', region: 'fra' });
    assert.equal(r.digest, sha(ociTar));
  });

  test('bodies that are not image archives answer 400 naming what to send', async () => {
    const post = (body: Buffer | string, q = 'region=fra') => cluster.fetch(`/v1/images/import?${q}`, { method: 'POST', body, headers: { 'content-type': 'application/x-tar' } });
    for (const [what, body] of [['empty', ''], ['text', 'hello, not a tar at all'.repeat(40)], ['bad gzip', Buffer.from([0x1f, 0x8b, 1, 2, 3])]] as const) {
      const res = await post(body);
      const json = (await res.json()) as { error: string; status: string };
      assert.equal(res.status, 400, what);
      assert.equal(json.status, 'invalid_argument', what);
      assert.match(json.error, /OCI archive \(an oci-layout tar.*docker-archive tarball/, what);
    }
    const wrongTar = await post(createTar([{ type: 'file', path: 'hello.txt', data: 'hi' }]));
    assert.equal(wrongTar.status, 400);
    assert.match(((await wrongTar.json()) as { error: string }).error, /the uploaded archive is neither an OCI layout archive nor a docker-archive/);
    // Several hosts (spooled) answer the same.
    const spooled = await post('', '');
    assert.equal(spooled.status, 400);
  });

  test('a declared size above 10 GiB answers 413 at once; no token 401; unknown region 503', async () => {
    // Only the headers and a few bytes go out: the answer must come without the 11 GiB.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${cluster.apiUrl}/v1/images/import?region=fra`, {
        method: 'POST', headers: { authorization: `Bearer ${cluster.adminToken}`, 'content-length': String(11 * 1024 ** 3) },
      }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(ociTar);
    });
    assert.equal(status, 413);
    const anon = await fetch(`${cluster.apiUrl}/v1/images`);
    assert.equal(anon.status, 401);
    const nowhere = await cluster.fetch('/v1/images/import?region=syd', { method: 'POST', body: ociTar });
    assert.equal(nowhere.status, 503);
    assert.match(((await nowhere.json()) as { error: string }).error, /no host in region syd/);
  });

  test('gc keeps images of live machines (by name) and removes the rest', async () => {
    await cluster.client.apps.create({ name: 'imgs', org_slug: 'personal' });
    const m = await cluster.client.machines.create('imgs', { region: 'fra', config: { image: 'docker.io/library/app:1' } });
    const gc = await cluster.client.images.gc({ region: 'fra' });
    const fraDriver = drivers.find((d) => d.stored.has('docker.io/library/app:1'))!;
    assert.deepEqual([...fraDriver.stored.keys()], ['docker.io/library/app:1']);
    assert.ok(gc.hosts[0]!.removed.includes('name docker.io/library/app:2'));
    await cluster.client.machines.delete('imgs', m.id, { force: true });
    await cluster.client.images.gc({ region: 'fra' });
    assert.equal(fraDriver.stored.size, 0);
  });
});

describe('images without an image store or without hosts', () => {
  test('the fake driver answers 412, no agent 503', async () => {
    const cluster = await startCluster();
    try {
      const res = await cluster.fetch('/v1/images/import', { method: 'POST', body: ociTar });
      assert.equal(res.status, 412);
      assert.match(((await res.json()) as { error: string }).error, /the fake driver keeps no images/);
      const list = await cluster.client.images.list();
      assert.match(list.hosts[0]!.error ?? '', /keeps no images/);
    } finally {
      await cluster.close();
    }
    const store = new SqliteStore(':memory:');
    await store.migrate();
    const api = createApiServer({ store, region: 'lcl', agents: [], logger: silentLogger, port: 0 });
    const { url } = await api.start();
    try {
      const { bootstrap } = await import('../../src/server/bootstrap.js');
      const dir = mkdtempSync(join(tmpdir(), 'hangar-images-noagent-'));
      const { adminToken } = await bootstrap(store, dir);
      rmSync(dir, { recursive: true, force: true });
      const res = await fetch(`${url}/v1/images/import`, { method: 'POST', body: ociTar, headers: { authorization: `Bearer ${adminToken}` } });
      assert.equal(res.status, 503);
      assert.match(((await res.json()) as { error: string }).error, /no host is connected/);
    } finally {
      await api.close();
    }
  });
});
