/**
 * `hangar image import` end to end on real containers: busybox images exported as an OCI archive
 * and as a docker-archive (src/testkit/images.ts) go through the client and the CLI to the API
 * server and the crun agent; machines run them by name (HTTP on the private IP, exec); GC keeps
 * images machines use (started or stopped) and removes them once the machines are destroyed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HostImage } from '../../src/api-types/image.js';
import { crunClusterUnavailable, startCrunCluster, type CrunCluster } from '../../src/testkit/crun-cluster.js';
import { buildBusyboxImage, writeDockerArchive, writeOciArchive } from '../../src/testkit/images.js';
import { repoRoot } from '../../src/testkit/paths.js';
import { runCommand } from '../../src/testkit/processes.js';
import { waitHttp } from './crun-helpers.js';

const unavailable = crunClusterUnavailable();
const APP = 'imgs';
// The compiled entry behind bin/hangar (bin/hangar would rebuild first when sources changed).
const MAIN = join(repoRoot(), 'dist', 'src', 'main.js');

const runCli = (args: string[], env: NodeJS.ProcessEnv) => runCommand(process.execPath, [MAIN, ...args], env);

describe('image import on crun', { skip: unavailable, timeout: 240_000 }, () => {
  let c: CrunCluster;
  let dir: string;
  let ociFile: string;
  let dockerFile: string;
  let cliFile: string;
  const client = () => c.cluster.client;
  const images = async (): Promise<HostImage[]> => (await client().images.list()).hosts.flatMap((h) => h.images);
  const names = async () => (await images()).map((i) => i.name).sort();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-images-crun-'));
    const httpd = (text: string) => ({ cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], exposedPorts: [8080], files: { 'www/index.html': text } });
    buildBusyboxImage({ dir: join(dir, 'oci'), tag: 'v1', ...httpd('from an oci archive\n') });
    buildBusyboxImage({ dir: join(dir, 'docker'), tag: 'v1', ...httpd('from a docker archive\n') });
    buildBusyboxImage({ dir: join(dir, 'cli'), tag: 'v1', ...httpd('from the cli\n') });
    ociFile = join(dir, 'oci.tar');
    dockerFile = join(dir, 'docker.tar');
    cliFile = join(dir, 'cli.tar');
    await writeOciArchive(join(dir, 'oci'), ociFile);
    await writeDockerArchive(join(dir, 'docker'), dockerFile, { tag: 'v1', repoTags: ['dockerapp:7'] });
    await writeDockerArchive(join(dir, 'cli'), cliFile, { tag: 'v1', repoTags: ['cliapp:1'] });
    c = await startCrunCluster({ tag: 'img' });
    await client().apps.create({ name: APP, org_slug: 'personal' });
  });
  after(async () => {
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('import both archive kinds, run machines by those names, GC only after destroy', async () => {
    const oci = await client().images.import(ociFile, { name: 'ociapp:1' });
    assert.equal(oci.name, 'docker.io/library/ociapp:1');
    assert.match(oci.digest, /^sha256:[0-9a-f]{64}$/);
    const docker = await client().images.import(dockerFile); // the archive's own name
    assert.equal(docker.name, 'docker.io/library/dockerapp:7');
    assert.deepEqual(await names(), ['docker.io/library/dockerapp:7', 'docker.io/library/ociapp:1']);
    assert.ok((await images()).every((i) => i.source === 'import' && !i.in_use));

    const a = await client().machines.create(APP, { region: 'lcl', config: { image: 'ociapp:1' } } as never);
    const b = await client().machines.create(APP, { region: 'lcl', config: { image: 'dockerapp:7' } } as never);
    assert.equal(a.state, 'started');
    assert.equal(a.image_ref.digest, oci.digest);
    assert.deepEqual(await waitHttp(a.private_ip), { status: 200, body: 'from an oci archive\n' });
    assert.deepEqual(await waitHttp(b.private_ip), { status: 200, body: 'from a docker archive\n' });
    const echo = await client().machines.exec(APP, a.id, { command: ['echo', 'hi from ociapp'] });
    assert.equal(echo.stdout, 'hi from ociapp\n');

    // In use (started, then stopped): GC keeps them.
    let gc = await client().images.gc();
    assert.deepEqual(gc.hosts[0]!.removed.filter((r) => r.startsWith('name ')), []);
    assert.ok((await images()).every((i) => i.in_use));
    await client().machines.stop(APP, a.id, { timeout: '5s' } as never);
    await client().machines.wait(APP, a.id, { state: 'stopped', timeout: 30 });
    gc = await client().images.gc();
    assert.deepEqual(await names(), ['docker.io/library/dockerapp:7', 'docker.io/library/ociapp:1']);
    await client().machines.start(APP, a.id);
    assert.equal((await waitHttp(a.private_ip)).body, 'from an oci archive\n', 'the stopped machine starts again on its image');

    // Destroyed: its image goes, the other stays.
    await client().machines.delete(APP, a.id, { force: true });
    gc = await client().images.gc();
    assert.ok(gc.hosts[0]!.removed.includes('name docker.io/library/ociapp:1'), gc.hosts[0]!.removed.join(', '));
    assert.ok(gc.hosts[0]!.removed.includes(`rootfs ${oci.digest}`));
    assert.deepEqual(await names(), ['docker.io/library/dockerapp:7']);
    assert.equal((await waitHttp(b.private_ip)).body, 'from a docker archive\n');

    // A periodic-style run (grace) keeps a fresh import nobody uses yet.
    await client().images.import(ociFile, { name: 'ociapp:2' });
    await client().images.gc({ grace: 3600 });
    assert.deepEqual(await names(), ['docker.io/library/dockerapp:7', 'docker.io/library/ociapp:2']);

    await client().machines.delete(APP, b.id, { force: true });
    await client().images.gc();
    assert.deepEqual(await names(), []);
    await assert.rejects(client().machines.create(APP, { region: 'lcl', config: { image: 'ociapp:1' } } as never), /ociapp/);
  });

  test('hangar image import / list / gc through the real CLI', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HANGAR_API_URL: c.cluster.apiUrl, HANGAR_API_TOKEN: c.cluster.adminToken, HANGAR_CONFIG_DIR: join(dir, 'cli-config') };
    const imported = await runCli(['image', 'import', cliFile, 'cliapp:9'], env);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /^Imported docker\.io\/library\/cliapp:9 \(sha256:[0-9a-f]{64}\) on 1 host\n$/);
    const json = await runCli(['images', 'import', dockerFile, '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).name, 'docker.io/library/dockerapp:7');
    const list = await runCli(['image', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^HOST\s+REGION\s+NAME\s+DIGEST\s+SOURCE\s+IN USE\n/);
    assert.match(list.stdout, /docker\.io\/library\/cliapp:9\s+[0-9a-f]{12}\s+import\s+no/);
    const m = await client().machines.create(APP, { region: 'lcl', config: { image: 'cliapp:9' } } as never);
    assert.equal((await waitHttp(m.private_ip)).body, 'from the cli\n');
    const bad = await runCli(['image', 'import', join(dir, 'oci'), 'x:1'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /does not exist or is not a file/);
    const gc = await runCli(['image', 'gc'], env);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout, /^host-0-lcl: removed docker\.io\/library\/dockerapp:7 \(\d+ items\)\n$/);
    assert.deepEqual(await names(), ['docker.io/library/cliapp:9']);
    await client().machines.delete(APP, m.id, { force: true });
  });
});
