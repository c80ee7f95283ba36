/**
 * Bad input on real containers, through the API. The rule (docs/crun-driver.md, "What fails
 * where"): what is wrong before anything runs — the image cannot be had (missing, registry down or
 * answering garbage, corrupt layer) or the request is invalid (memory below the minimum) — makes
 * `create` answer an error and leaves no machine; what is wrong once the image is there — an
 * entrypoint missing from it — leaves the machine `failed` with a `start` event whose
 * `request.error` names the reason; a workload that runs and ends (at once, or OOM-killed) is an
 * ordinary exit (`exit` event with its code / `oom_killed`, then the restart policy). `exec` past
 * its timeout kills the command and answers 408 `timeout` quoting its output. Every case leaves the
 * host clean.
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Machine, MachineEvent } from '../../src/api-types/machine.js';
import { crunClusterUnavailable, startCrunCluster, type CrunCluster } from '../../src/testkit/crun-cluster.js';
import { buildBusyboxImage } from '../../src/testkit/images.js';
import { freeLoopbackPort } from '../../src/testkit/registry.js';
import { agentFootprint, leftovers, rejectsWith, until } from './crun-helpers.js';

const unavailable = crunClusterUnavailable();
const APP = 'bad';

describe('bad input on crun through the API', { skip: unavailable, timeout: 180_000 }, () => {
  let c: CrunCluster;
  let garbage: Server;
  let garbageHost: string;
  const client = () => c.cluster.client;
  const create = (config: Record<string, unknown>): Promise<Machine> =>
    client().machines.create(APP, { config: { image: c.images.httpd, ...config }, region: 'lcl' } as never);
  /** After a refused create: no machine in the catalog and nothing mounted or running for it. */
  const assertNothingLeft = async () => {
    assert.deepEqual((await client().machines.list(APP)).map((m) => m.id), []);
    assert.deepEqual(await agentFootprint(c), { mounts: [], containers: [] });
  };

  before(async () => {
    c = await startCrunCluster({ tag: 'b' });
    await client().apps.create({ name: APP, org_slug: 'personal' });
    // A "registry" that answers the API root but garbage for every manifest.
    garbage = createServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('<html>definitely not a manifest');
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    garbageHost = `127.0.0.1:${(garbage.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => garbage?.close(r));
    await c?.close();
    assert.deepEqual(c?.cluster.contractProblems ?? [], [], 'every response matches the OpenAPI document');
  });

  test('an image that does not exist: 404 not_found naming it, no machine left', async () => {
    await rejectsWith(create({ image: `${c.registryHost}/no-such-image:1` }), 'not_found', /no-such-image/);
    await assertNothingLeft();
  });

  test('a registry that is down: unavailable naming the registry, no machine left', async () => {
    const port = await freeLoopbackPort();
    await rejectsWith(create({ image: `127.0.0.1:${port}/app:1` }), 'unavailable', new RegExp(`127\\.0\\.0\\.1:${port}`));
    await assertNothingLeft();
  });

  test('a registry that answers garbage: unavailable, no machine left', async () => {
    await rejectsWith(create({ image: `${garbageHost}/app:1` }), 'unavailable', /not an image manifest/);
    await assertNothingLeft();
  });

  test('a corrupt layer: unavailable naming the blob, no machine left', async () => {
    const layout = join(c.cluster.dir, 'corrupt-layout');
    const built = buildBusyboxImage({ dir: layout, tag: '1', cmd: ['sleep', '1000'], files: { 'corrupt-marker': `unique ${Date.now()}\n` } });
    await c.registry.push(layout, 'corrupt:1');
    const hex = built.layers[0]!.digest.slice('sha256:'.length);
    const blob = join(c.registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    assert.ok(readdirSync(join(blob, '..')).includes('data'));
    writeFileSync(blob, Buffer.alloc(built.layers[0]!.size, 0x42)); // same size, wrong bytes
    await rejectsWith(create({ image: `${c.registryHost}/corrupt:1` }), 'unavailable', /sha256|digest|corrupt|mismatch/i);
    await assertNothingLeft();
  });

  test('memory below the minimum: invalid_argument naming guest.memory_mb, no machine left', async () => {
    await rejectsWith(create({ guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 64 } }), 'invalid_argument', /memory_mb/);
    await assertNothingLeft();
  });

  test('an entrypoint that is not in the image: the machine is failed, its start event says why', async () => {
    const m = await create({ init: { exec: ['/no/such/entrypoint'] } });
    assert.equal(m.state, 'failed');
    const events: MachineEvent[] = await client().machines.events(APP, m.id);
    const start = events.find((e) => e.type === 'start');
    assert.equal(start?.status, 'failed');
    assert.match(String((start?.request as { error?: string } | undefined)?.error), /"\/no\/such\/entrypoint" was not found in image/);
    assert.deepEqual(await agentFootprint(c), { mounts: [], containers: [] }, 'nothing mounted or running for a failed start');
    await client().machines.delete(APP, m.id);
    assert.deepEqual(await leftovers(c, m.id), []);
  });

  test('an app that needs more memory than it has: exit event with oom_killed, then stopped (restart no)', async () => {
    const m = await create({
      init: { exec: ['sh', '-c', 'sleep 0.1; exec dd if=/dev/zero of=/dev/null bs=300M count=1'] },
      guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 }, restart: { policy: 'no' },
    });
    await client().machines.wait(APP, m.id, { state: 'stopped', timeout: 15 });
    const exit = (await client().machines.events(APP, m.id)).find((e) => e.type === 'exit');
    const info = (exit?.request as { exit_event?: { exit_code: number; oom_killed: boolean } } | undefined)?.exit_event;
    assert.deepEqual({ code: info?.exit_code, oom: info?.oom_killed }, { code: 137, oom: true });
    await client().machines.delete(APP, m.id);
    assert.deepEqual(await leftovers(c, m.id), []);
  });

  test('a machine that exits at once: started, then an exit event with its code; stopped under restart no', async () => {
    const m = await create({ init: { exec: ['sh', '-c', 'echo bye >&2; exit 3'] }, restart: { policy: 'no' } });
    assert.ok(['started', 'stopped'].includes(m.state), m.state);
    await client().machines.wait(APP, m.id, { state: 'stopped', timeout: 10 });
    const exit = await until('the exit event', async () => (await client().machines.events(APP, m.id)).find((e) => e.type === 'exit'));
    assert.equal((exit.request as { exit_event: { exit_code: number } }).exit_event.exit_code, 3);
    assert.deepEqual(await agentFootprint(c), { mounts: [], containers: [] });
    await client().machines.delete(APP, m.id);
    assert.deepEqual(await leftovers(c, m.id), []);
  });

  test('exec of a command that never ends: killed at the timeout, 408 timeout quoting its output, nothing left inside', async () => {
    const m = await create({ init: { exec: ['sleep', '1000'] } });
    const started = Date.now();
    const err = await rejectsWith(
      client().machines.exec(APP, m.id, { command: ['sh', '-c', 'echo working; exec sleep 300'], timeout: 1 }),
      'timeout',
      /did not finish within 1s and was killed; its output so far: "working"/,
    );
    assert.ok(Date.now() - started < 5000, 'answered soon after the timeout');
    const ps = await client().machines.ps(APP, m.id);
    assert.ok(!ps.some((p) => p.command.includes('sleep 300')), JSON.stringify(ps));
    assert.equal((await client().machines.get(APP, m.id)).state, 'started', 'the machine itself is unaffected');
    await client().machines.delete(APP, m.id, { force: true });
    assert.deepEqual(await leftovers(c, m.id), []);
  });
});
