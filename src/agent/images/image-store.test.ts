import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HangarError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { buildBusyboxImage, writeDockerArchive, writeOciArchive, type BuiltImage } from '../../testkit/images.js';
import { missingTools, REGISTRY_TOOLS, startRegistry, type TestRegistry } from '../../testkit/registry.js';
import { ImageStore, normalizeImage } from './image-store.js';
import { sha256Digest } from './oci.js';
import { rejectsWith } from '../../testkit/assertions.js';

const missing = missingTools([...REGISTRY_TOOLS, 'umoci']);
const skip = missing.length > 0 ? `${missing.join(', ')} not installed (run \`hangar host setup\`)` :
  process.getuid?.() !== 0 ? 'unpacking with ownership needs root' : false;

function skopeo(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('skopeo', ['--insecure-policy', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`skopeo ${args.join(' ')}: ${err}`))));
  });
}

/** Adds an OCI index tagged `tag` to a layout, listing the given manifests with their platforms. */
function addIndex(layoutDir: string, tag: string, entries: { image: BuiltImage; arch: string }[]): void {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries.map((e) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: e.image.manifestDigest, size: e.image.manifestSize,
      platform: { architecture: e.arch, os: 'linux' },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const digest = sha256Digest(bytes);
  writeFileSync(join(layoutDir, 'blobs', 'sha256', digest.slice(7)), bytes);
  const top = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: unknown[] };
  top.manifests.push({ mediaType: index.mediaType, digest, size: bytes.length, annotations: { 'org.opencontainers.image.ref.name': tag } });
  writeFileSync(join(layoutDir, 'index.json'), JSON.stringify(top));
}


describe('normalizeImage', () => {
  it('normalizes Docker Hub and registry names', () => {
    assert.equal(normalizeImage('nginx').name, 'docker.io/library/nginx:latest');
    assert.equal(normalizeImage('docker.io/foo/bar:1').name, 'docker.io/foo/bar:1');
    assert.equal(normalizeImage('127.0.0.1:5000/app@sha256:' + 'a'.repeat(64)).name, `127.0.0.1:5000/app@sha256:${'a'.repeat(64)}`);
    assert.throws(() => normalizeImage('Bad/Name'), (e: unknown) => e instanceof HangarError && e.code === 'invalid_argument');
    assert.throws(() => normalizeImage('x@sha256:zz'), /digest/);
    assert.throws(() => normalizeImage(''), /empty/);
  });
});

describe('ImageStore with a real registry', { skip, timeout: 120_000 }, () => {
  let dir: string;
  let registry: TestRegistry;
  let store: ImageStore;
  let simple: BuiltImage;
  let layered: BuiltImage;
  let simpleDigest: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-images-test-'));
    registry = await startRegistry();
    const layout = join(dir, 'layout');
    simple = buildBusyboxImage({ dir: layout, tag: 'v1', cmd: ['/bin/sh', '-c', 'echo hi'], labels: { team: 'core' }, exposedPorts: [8080], env: { GREETING: 'hi' } });
    layered = buildBusyboxImage({
      dir: layout,
      tag: 'layered',
      layers: [
        {
          files: {
            'data/a': 'a', 'data/b': 'b', 'data/gone/x': 'x', 'data/c': 'c', 'data/c2': { hardlink: 'data/c' },
            'keep/secret': { data: 's', mode: 0o600, uid: 1000, gid: 1001 }, 'keep/exec': { data: '#!/bin/sh\n', mode: 0o755 },
            'tmpdir': { dir: true, mode: 0o1777 }, 'opq/old': 'old',
          },
        },
        { whiteouts: ['data/a', 'data/gone'], opaque: ['opq'], files: { 'opq/new': 'new', 'data/b2': { hardlink: 'data/b' } } },
      ],
    });
    simpleDigest = await registry.push(layout, 'app:v1', { from: 'v1' });
    await registry.push(layout, 'app:layered', { from: 'layered' });
    store = new ImageStore({ dir: join(dir, 'store'), logger: silentLogger });
  });
  after(async () => {
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pulls by tag: digest, imageRef, config, unpacked rootfs', { timeout: 30_000 }, async () => {
    const img = await store.resolve(`${registry.host}/app:v1`);
    assert.equal(img.name, `${registry.host}/app:v1`);
    assert.equal(img.digest, simpleDigest);
    assert.equal(img.digest, simple.manifestDigest);
    assert.deepEqual(img.imageRef, { registry: registry.host, repository: 'app', tag: 'v1', digest: simpleDigest, labels: { team: 'core' } });
    assert.deepEqual(img.config.Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.ok(img.config.Env?.includes('GREETING=hi'));
    assert.deepEqual(img.config.ExposedPorts, { '8080/tcp': {} });
    assert.equal(img.rootfsDir, join(dir, 'store', 'rootfs', simpleDigest.slice(7), 'rootfs'));
    assert.ok(statSync(join(img.rootfsDir, 'bin', 'busybox')).isFile());
    // The layout is a valid OCI layout umoci can read by the digest ref.
    const index = JSON.parse(readFileSync(join(dir, 'store', 'oci', 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    const refs = index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']);
    assert.ok(refs.includes(`sha256-${simpleDigest.slice(7)}`));
    assert.ok(refs.includes(`${registry.host}/app:v1`));
    assert.deepEqual(readdirSync(join(dir, 'store', 'tmp')), []);
  });

  it('pulls by digest', { timeout: 30_000 }, async () => {
    const other = new ImageStore({ dir: join(dir, 'store-digest'), logger: silentLogger });
    const img = await other.resolve(`${registry.host}/app@${simpleDigest}`);
    assert.equal(img.digest, simpleDigest);
    assert.equal(img.imageRef.tag, '');
    assert.ok(existsSync(join(img.rootfsDir, 'bin', 'sh')));
  });

  it('unpacks whiteouts, opaque dirs, hard links, modes and owners right', { timeout: 30_000 }, async () => {
    const img = await store.resolve(`${registry.host}/app:layered`);
    const r = img.rootfsDir;
    assert.equal(existsSync(join(r, 'data/a')), false, 'whiteout removes a file');
    assert.equal(existsSync(join(r, 'data/gone')), false, 'whiteout removes a directory');
    assert.equal(readFileSync(join(r, 'data/b'), 'utf8'), 'b');
    assert.deepEqual(readdirSync(join(r, 'opq')), ['new'], 'opaque whiteout hides the lower content');
    assert.equal(readdirSync(join(r, 'data')).some((f) => f.startsWith('.wh.')), false);
    assert.equal(statSync(join(r, 'data/c')).ino, statSync(join(r, 'data/c2')).ino, 'hard link in one layer');
    assert.equal(statSync(join(r, 'data/b')).ino, statSync(join(r, 'data/b2')).ino, 'hard link to a lower layer');
    const secret = statSync(join(r, 'keep/secret'));
    assert.equal(secret.mode & 0o7777, 0o600);
    assert.equal(secret.uid, 1000);
    assert.equal(secret.gid, 1001);
    assert.equal(statSync(join(r, 'keep/exec')).mode & 0o777, 0o755);
    assert.equal(statSync(join(r, 'tmpdir')).mode & 0o7777, 0o1777);
  });

  it('serves a second resolve from disk, with the registry gone', { timeout: 30_000 }, async () => {
    const reg2 = await startRegistry();
    const layout2 = join(dir, 'layout2');
    buildBusyboxImage({ dir: layout2, tag: 'x', files: { 'etc/x': 'x' } });
    const digest = await reg2.push(layout2, 'cached:x');
    const local = new ImageStore({ dir: join(dir, 'store-cache'), logger: silentLogger });
    const first = await local.resolve(`${reg2.host}/cached:x`);
    const byDigest = await local.resolve(`${reg2.host}/cached@${digest}`);
    await reg2.close();
    const second = await local.resolve(`${reg2.host}/cached:x`);
    assert.deepEqual(second, first);
    assert.equal((await local.resolve(`${reg2.host}/cached@${digest}`)).rootfsDir, byDigest.rootfsDir);
    // A new store on the same dir (agent restart) also resolves without the network.
    const reopened = new ImageStore({ dir: join(dir, 'store-cache'), logger: silentLogger });
    assert.equal((await reopened.resolve(`${reg2.host}/cached:x`)).digest, digest);
  });

  it('shares one pull and unpack between concurrent resolves', { timeout: 30_000 }, async () => {
    const local = new ImageStore({ dir: join(dir, 'store-concurrent'), logger: silentLogger });
    const all = await Promise.all(Array.from({ length: 8 }, () => local.resolve(`${registry.host}/app:v1`)));
    assert.ok(all.every((r) => r.rootfsDir === all[0]!.rootfsDir));
    assert.deepEqual(readdirSync(join(dir, 'store-concurrent', 'rootfs')), [simpleDigest.slice(7)]);
  });

  it('picks linux/amd64 from a multi-arch index', { timeout: 30_000 }, async () => {
    const layout = join(dir, 'layout-multi');
    const amd = buildBusyboxImage({ dir: layout, tag: 'amd', architecture: 'amd64', files: { 'etc/arch': 'amd64' } });
    const arm = buildBusyboxImage({ dir: layout, tag: 'arm', architecture: 'arm64', files: { 'etc/arch': 'arm64' } });
    addIndex(layout, 'multi', [{ image: arm, arch: 'arm64' }, { image: amd, arch: 'amd64' }]);
    addIndex(layout, 'armonly', [{ image: arm, arch: 'arm64' }]);
    await skopeo(['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${registry.host}/multi:1`]);
    await skopeo(['copy', '--quiet', '--all', '--dest-tls-verify=false', `oci:${layout}:armonly`, `docker://${registry.host}/multi:arm`]);
    const img = await store.resolve(`${registry.host}/multi:1`);
    assert.equal(img.digest, amd.manifestDigest);
    assert.equal(readFileSync(join(img.rootfsDir, 'etc/arch'), 'utf8'), 'amd64');
    await rejectsWith(store.resolve(`${registry.host}/multi:arm`), 'invalid_argument', /no linux\/amd64 variant \(it has: linux\/arm64\)/);
  });

  it('pulls Docker schema-2 manifests (rewritten to OCI for umoci)', { timeout: 30_000 }, async () => {
    await skopeo(['copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${join(dir, 'layout')}:v1`, `docker://${registry.host}/docker:v1`]);
    const res = await fetch(`${registry.url}/v2/docker/manifests/v1`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json');
    const img = await store.resolve(`${registry.host}/docker:v1`);
    assert.equal(img.digest, sha256Digest(bytes), 'the digest is the registry\'s');
    assert.deepEqual(img.config.Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.ok(existsSync(join(img.rootfsDir, 'bin/busybox')));
  });

  it('says not_found for a missing tag and repository', { timeout: 15_000 }, async () => {
    await rejectsWith(store.resolve(`${registry.host}/app:nope`), 'not_found', new RegExp(`image ${registry.host}/app:nope not found: registry ${registry.host.replace(/\./g, '\\.')} has no manifest app:nope.*push the image`));
    await rejectsWith(store.resolve(`${registry.host}/nothere:1`), 'not_found', /not found/);
  });

  it('imports an OCI archive and a docker-archive, named by the archive or by the caller', { timeout: 30_000 }, async () => {
    const layout = join(dir, 'layout-import');
    const built = buildBusyboxImage({ dir: layout, tag: 'imp', files: { 'etc/imported': 'yes' }, labels: { from: 'archive' } });
    const ociFile = join(dir, 'img.oci.tar');
    const dockerFile = join(dir, 'img.docker.tar');
    await writeOciArchive(layout, ociFile);
    await writeDockerArchive(layout, dockerFile, { tag: 'imp', repoTags: ['example.com/team/imported:7'] });

    const local = new ImageStore({ dir: join(dir, 'store-import'), logger: silentLogger });
    const fromOci = await local.import(ociFile, 'myapp:1');
    assert.equal(fromOci.name, 'docker.io/library/myapp:1');
    assert.equal(fromOci.digest, built.manifestDigest);
    assert.equal(readFileSync(join(fromOci.rootfsDir, 'etc/imported'), 'utf8'), 'yes');
    assert.deepEqual(fromOci.imageRef.labels, { from: 'archive' });

    const ownName = await local.import(ociFile);
    assert.equal(ownName.name, 'docker.io/library/imp:latest', 'an OCI archive is named by its ref.name');

    const fromDocker = await local.import(dockerFile);
    assert.equal(fromDocker.name, 'example.com/team/imported:7');
    assert.equal(readFileSync(join(fromDocker.rootfsDir, 'etc/imported'), 'utf8'), 'yes');
    assert.deepEqual(fromDocker.imageRef, { registry: 'example.com', repository: 'team/imported', tag: '7', digest: fromDocker.digest, labels: { from: 'archive' } });

    // An imported name wins over the registry: example.com is not reachable from here.
    assert.equal((await local.resolve('example.com/team/imported:7')).digest, fromDocker.digest);
    assert.equal((await local.resolve('myapp:1')).digest, built.manifestDigest);

    const junk = join(dir, 'junk.tar');
    writeFileSync(junk, 'not a tar at all');
    await rejectsWith(local.import(junk), 'invalid_argument', /not a tar archive|neither an OCI layout archive/);
    await rejectsWith(local.import(join(dir, 'missing.tar')), 'invalid_argument', /does not exist/);
  });

  it('gc removes what no machine uses and keeps imported images', { timeout: 60_000 }, async () => {
    const local = new ImageStore({ dir: join(dir, 'store-gc'), logger: silentLogger });
    const keep = await local.resolve(`${registry.host}/app:v1`);
    const drop = await local.resolve(`${registry.host}/app:layered`);
    const ociFile = join(dir, 'gc.oci.tar');
    const layout = join(dir, 'layout-gc');
    buildBusyboxImage({ dir: layout, tag: 'gc', files: { 'etc/gc': '1' } });
    await writeOciArchive(layout, ociFile);
    const imported = await local.import(ociFile, 'gc-import:1');

    const { removed } = await local.gc(new Set([keep.digest]));
    assert.ok(removed.includes(`name ${registry.host}/app:layered`), removed.join('\n'));
    assert.ok(removed.includes(`rootfs ${drop.digest}`));
    const layeredOnly = layered.layers.slice(1).map((l) => `blob ${l.digest}`);
    for (const b of layeredOnly) assert.ok(removed.includes(b), `${b} removed`);
    assert.ok(!removed.some((r) => r.includes(keep.digest.slice(7)) || r.includes(imported.digest.slice(7))));
    assert.equal(existsSync(drop.rootfsDir), false);
    assert.ok(existsSync(keep.rootfsDir));
    assert.ok(existsSync(imported.rootfsDir));
    // The shared busybox layer is still referenced by the kept image.
    assert.ok(existsSync(join(dir, 'store-gc', 'oci', 'blobs', 'sha256', simple.layers[0]!.digest.slice(7))));
    assert.equal((await local.gc(new Set([keep.digest]))).removed.length, 0, 'a second gc finds nothing');
    // Everything still resolves: the dropped one by pulling again.
    assert.equal((await local.resolve(`${registry.host}/app:layered`)).digest, drop.digest);
    assert.equal((await local.resolve('gc-import:1')).digest, imported.digest);
    // Nothing in use: the pulled image goes, the imported one stays.
    const second = await local.gc(new Set());
    assert.ok(second.removed.includes(`name ${registry.host}/app:v1`));
    assert.ok(existsSync(imported.rootfsDir));
    assert.deepEqual(readdirSync(join(dir, 'store-gc', 'rootfs')), [imported.digest.slice(7)]);
  });
});
