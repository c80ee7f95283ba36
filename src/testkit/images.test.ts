import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildBigImage, buildBusyboxImage, readLayoutManifest, sha256, writeDockerArchive, writeOciArchive } from './images.js';
import { missingTools } from './registry.js';

const skopeoMissing = missingTools(['skopeo']).length > 0 ? 'skopeo is not installed (run `hangar host setup`)' : false;
const umociMissing = missingTools(['umoci']).length > 0 ? 'umoci is not installed (run `hangar host setup`)' : false;

function skopeoInspect(ref: string): Record<string, unknown> {
  const res = spawnSync('skopeo', ['inspect', ref], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout);
}

describe('testkit images', { skip: existsSync('/bin/busybox') ? false : '/bin/busybox is missing (install busybox-static: `hangar host setup`)' }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-images-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a valid OCI layout with digests that match the blobs', () => {
    const layout = join(dir, 'layout1');
    const image = buildBusyboxImage({
      dir: layout,
      tag: 'v1',
      cmd: ['httpd', '-f', '-p', '8080'],
      env: { GREETING: 'hello' },
      workingDir: '/srv',
      exposedPorts: [8080, '53/udp'],
      labels: { app: 'test' },
      files: { 'srv/index.html': 'hi\n', 'usr/local/bin/run': { data: '#!/bin/sh\necho run\n', mode: 0o755 } },
    });
    assert.deepEqual(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 1);
    assert.equal(index.manifests[0].digest, image.manifestDigest);
    assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'v1');
    const blob = (d: string) => readFileSync(join(layout, 'blobs/sha256', d.slice(7)));
    assert.equal(sha256(blob(image.manifestDigest)), image.manifestDigest);
    assert.equal(sha256(blob(image.configDigest)), image.configDigest);
    const config = JSON.parse(blob(image.configDigest).toString());
    assert.deepEqual(config.config.Cmd, ['httpd', '-f', '-p', '8080']);
    assert.ok(config.config.Env.includes('GREETING=hello'));
    assert.ok(config.config.Env.some((e: string) => e.startsWith('PATH=')));
    assert.equal(config.config.WorkingDir, '/srv');
    assert.deepEqual(config.config.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
    for (const [i, layer] of image.layers.entries()) {
      const gz = blob(layer.digest);
      assert.equal(sha256(gz), layer.digest);
      assert.equal(sha256(gunzipSync(gz)), config.rootfs.diff_ids[i]);
    }
    // deterministic
    const again = buildBusyboxImage({ dir: join(dir, 'layout1b'), tag: 'v1', cmd: ['httpd', '-f', '-p', '8080'], env: { GREETING: 'hello' }, workingDir: '/srv', exposedPorts: [8080, '53/udp'], labels: { app: 'test' }, files: { 'srv/index.html': 'hi\n', 'usr/local/bin/run': { data: '#!/bin/sh\necho run\n', mode: 0o755 } } });
    assert.equal(again.manifestDigest, image.manifestDigest);
  });

  it('keeps several tags in one layout', () => {
    const layout = join(dir, 'multi');
    const a = buildBusyboxImage({ dir: layout, tag: 'a', cmd: ['echo', 'a'] });
    const b = buildBusyboxImage({ dir: layout, tag: 'b', cmd: ['echo', 'b'] });
    const a2 = buildBusyboxImage({ dir: layout, tag: 'a', cmd: ['echo', 'a2'] });
    assert.notEqual(a.manifestDigest, a2.manifestDigest);
    assert.equal(readLayoutManifest(layout, 'a').digest, a2.manifestDigest);
    assert.equal(readLayoutManifest(layout, 'b').digest, b.manifestDigest);
  });

  it('unpacks with umoci into a runnable busybox rootfs, whiteouts applied', { skip: umociMissing, timeout: 30_000 }, () => {
    const layout = join(dir, 'layered');
    buildBusyboxImage({
      dir: layout,
      tag: 'l',
      cmd: ['/bin/sh', '-c', 'echo hi'],
      files: { 'etc/remove-me': 'x', 'opt/old/a': 'a', 'opt/keep': 'k' },
      layers: [
        { files: { 'etc/added': 'new', 'etc/hard': { hardlink: 'etc/added' } }, whiteouts: ['etc/remove-me'] },
        { opaque: ['opt/old'], files: { 'opt/old/b': 'b' } },
      ],
    });
    const bundle = join(dir, 'bundle');
    const res = spawnSync('umoci', ['unpack', '--image', `${layout}:l`, bundle], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const rootfs = join(bundle, 'rootfs');
    assert.equal(readlinkSync(join(rootfs, 'bin/sh')), 'busybox');
    assert.equal(statSync(join(rootfs, 'bin/busybox')).mode & 0o111, 0o111);
    assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
    assert.ok(!existsSync(join(rootfs, 'etc/remove-me')));
    assert.equal(readFileSync(join(rootfs, 'etc/hard'), 'utf8'), 'new');
    assert.ok(!existsSync(join(rootfs, 'opt/old/a')));
    assert.equal(readFileSync(join(rootfs, 'opt/old/b'), 'utf8'), 'b');
    assert.equal(readFileSync(join(rootfs, 'opt/keep'), 'utf8'), 'k');
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    assert.deepEqual(config.process.args, ['/bin/sh', '-c', 'echo hi']);
    if (process.getuid?.() === 0) {
      const run = spawnSync('chroot', [rootfs, '/bin/sh', '-c', 'echo from-$(hostname >/dev/null && echo chroot)'], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(run.stdout.trim(), 'from-chroot', run.stderr);
    }
  });

  it('writes OCI and docker archives that skopeo reads', { skip: skopeoMissing, timeout: 60_000 }, async () => {
    const layout = join(dir, 'archives');
    const image = buildBusyboxImage({ dir: layout, tag: 'x', cmd: ['echo', 'x'], layers: [{ files: { 'data/f': 'f' } }] });
    const ociFile = join(dir, 'image.oci.tar');
    await writeOciArchive(layout, ociFile);
    const oci = skopeoInspect(`oci-archive:${ociFile}:x`);
    assert.equal(oci.Digest, image.manifestDigest);
    assert.equal((oci.Layers as string[]).length, 2);

    const dockerFile = join(dir, 'image.docker.tar');
    await writeDockerArchive(layout, dockerFile, { tag: 'x', repoTags: ['example/app:x'] });
    const docker = skopeoInspect(`docker-archive:${dockerFile}`);
    assert.deepEqual((docker as { Env: string[] }).Env.filter((e) => e.startsWith('PATH=')).length, 1);
    const list = spawnSync('tar', ['-tf', dockerFile], { encoding: 'utf8' });
    assert.match(list.stdout, /^manifest\.json$/m);
    const manifest = JSON.parse(spawnSync('tar', ['-xOf', dockerFile, 'manifest.json'], { encoding: 'utf8' }).stdout);
    assert.deepEqual(manifest[0].RepoTags, ['example/app:x']);
    assert.equal(manifest[0].Config, `${image.configDigest.slice(7)}.json`);
    assert.deepEqual(manifest[0].Layers, image.config.rootfs.diff_ids.map((d) => `${d.slice(7)}/layer.tar`));
  });

  it('builds a big image of incompressible data', { timeout: 30_000 }, () => {
    const image = buildBigImage({ dir: join(dir, 'big'), tag: 'big', sizeMB: 8, seed: 's' });
    const layer = image.layers.at(-1)!;
    assert.ok(layer.size > 8 * 1024 * 1024, `layer is ${layer.size} bytes`);
    const same = buildBigImage({ dir: join(dir, 'big2'), tag: 'big', sizeMB: 8, seed: 's' });
    assert.equal(same.manifestDigest, image.manifestDigest);
  });
});
