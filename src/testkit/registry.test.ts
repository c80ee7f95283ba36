import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildBusyboxImage, type BuiltImage } from './images.js';
import { missingTools, REGISTRY_TOOLS, startRegistry, type TestRegistry } from './registry.js';

const missing = missingTools([...REGISTRY_TOOLS, 'umoci']);
const skip = missing.length > 0 ? `${missing.join(', ')} not installed (run \`hangar host setup\`)` : !existsSync('/bin/busybox') ? '/bin/busybox missing (busybox-static)' : false;

/** crun refuses to run on hybrid-cgroup hosts until `hangar host setup` moves hugetlb to v1. */
function crunSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'crun needs root';
  if (missingTools(['crun']).length > 0) return 'crun is not installed (run `hangar host setup`)';
  const controllers = '/sys/fs/cgroup/unified/cgroup.controllers';
  if (existsSync(controllers) && readFileSync(controllers, 'utf8').trim() !== '') {
    return 'cgroup2 still owns controllers on this hybrid host (run `hangar host setup`)';
  }
  return false;
}

describe('testkit registry', { skip }, () => {
  let dir: string;
  let registry: TestRegistry;
  let image: BuiltImage;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-registry-test-'));
    registry = await startRegistry();
    image = buildBusyboxImage({ dir: join(dir, 'layout'), tag: 'v1', cmd: ['/bin/sh', '-c', 'echo MARKER-$(cat /etc/greeting)'], files: { 'etc/greeting': 'crun-ok' } });
  });
  after(async () => {
    await registry?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the registry API on loopback', { timeout: 10_000 }, async () => {
    assert.match(registry.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(registry.url, `http://${registry.host}`);
    const res = await fetch(`${registry.url}/v2/`);
    assert.equal(res.status, 200);
  });

  it('pushes an image that skopeo inspects with the same digest', { timeout: 60_000 }, async () => {
    const digest = await registry.push(image.layoutDir, 'test/busybox:v1');
    assert.equal(digest, image.manifestDigest);
    const res = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/test/busybox:v1`], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const info = JSON.parse(res.stdout);
    assert.equal(info.Digest, image.manifestDigest);
    assert.equal(info.Layers.length, 1);
    const tags = await (await fetch(`${registry.url}/v2/test/busybox/tags/list`)).json();
    assert.deepEqual(tags, { name: 'test/busybox', tags: ['v1'] });
    // a manifest GET the way a puller does it
    const manifest = await fetch(`${registry.url}/v2/test/busybox/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers.get('docker-content-digest'), image.manifestDigest);
  });

  it('pushes under another name from a multi-image layout', { timeout: 60_000 }, async () => {
    const other = buildBusyboxImage({ dir: image.layoutDir, tag: 'v2', cmd: ['echo', 'two'] });
    const digest = await registry.push(image.layoutDir, 'test/other', { from: 'v2' });
    assert.equal(digest, other.manifestDigest);
  });

  it('pulls back an image that crun runs', { skip: crunSkipReason(), timeout: 60_000 }, async () => {
    const pulled = join(dir, 'pulled');
    let res = spawnSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${registry.host}/test/busybox:v1`, `oci:${pulled}:v1`], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const bundle = join(dir, 'bundle');
    res = spawnSync('umoci', ['unpack', '--image', `${pulled}:v1`, bundle], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(res.status, 0, res.stderr);
    const configPath = join(bundle, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    config.process.terminal = false;
    writeFileSync(configPath, JSON.stringify(config));
    const stateRoot = join(dir, 'crun-state');
    const id = `hangar-testkit-${process.pid}`;
    try {
      res = spawnSync('crun', ['--root', stateRoot, 'run', '--bundle', bundle, id], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(res.status, 0, res.stderr);
      assert.equal(res.stdout.trim(), 'MARKER-crun-ok');
    } finally {
      spawnSync('crun', ['--root', stateRoot, 'delete', '--force', id], { stdio: 'ignore', timeout: 10_000 });
    }
  });
});
