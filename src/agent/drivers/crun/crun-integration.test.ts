/**
 * crun-specific behaviour beyond the shared suite: HTTP on the private addresses, blank-slate
 * restarts, OOM, re-attachment by a new driver instance (agent restart), complete destroy, logs,
 * env and files. Real ImageStore + HostNetwork on a bridge of this file's own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import { SIGNALS } from '../../../core/signals.js';
import { baseSpec } from '../driver.conformance.js';
import type { ExitInfo } from '../driver.js';
import { CrunDriver } from './crun-driver.js';
import { mountOptionsOf, mountsUnder } from '../../images/overlay.js';
import type { ImageProvider } from './providers.js';
import { findRuntime, OciRuntime } from './runtime.js';
import { until } from '../../../testkit/waiting.js';
import { crunUnavailable, realProviders, tempDataDir } from './testing.js';

/** Waits (3 s at most) until `dir`/rootfs is a mount point, or with `want` false, no longer one. */
const mountedIn = (dir: string, want: boolean) =>
  until(`${dir}/rootfs ${want ? 'to become' : 'to stop being'} a mount point`, async () => ((await mountOptionsOf(join(dir, 'rootfs'))) !== undefined) === want, 3000, 10);

const unavailable = crunUnavailable();

function httpGet(host: string, port: number, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function waitHttp(host: string, port = 8080, ms = 5000): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await httpGet(host, port);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

describe('crun driver on a real host', { skip: unavailable, timeout: 120_000 }, () => {
  let root: string;
  let providers: Awaited<ReturnType<typeof realProviders>>;
  const drivers: CrunDriver[] = [];
  const ids: string[] = [];
  let n = 0;
  const newDriver = () => {
    const d = new CrunDriver({ dataDir: join(root, 'agent'), images: providers.images, network: providers.network });
    drivers.push(d);
    return d;
  };
  const track = (spec: AgentMachineSpec) => (ids.push(spec.id), spec);
  const withInit = (init: NonNullable<AgentMachineSpec['config']['init']>, extra: Partial<AgentMachineSpec['config']> = {}) =>
    track(baseSpec({ config: { image: 'docker.io/library/busybox:latest', init, ...extra } }));

  before(async () => {
    root = await tempDataDir('hangar-crun-int-');
    providers = await realProviders(root, { bridge: 'hgcint0', ipv4Cidr: '10.252.0.0/16', ipv6Net: 0xc1e, netnsPrefix: 'hci-' });
  });
  after(async () => {
    const cleaner = new CrunDriver({ dataDir: join(root, 'agent'), images: providers.images, network: providers.network });
    for (const id of ids) await cleaner.destroy(id).catch(() => {});
    await cleaner.close();
    for (const d of drivers) await d.close().catch(() => {});
    await providers.cleanup().catch(() => {});
    await rm(root, { recursive: true, force: true });
    void n;
  });

  test('the image Cmd (busybox httpd) answers on the private IPv4 and IPv6 from the host', async () => {
    const driver = newDriver();
    const spec = track(baseSpec());
    const { privateIp } = await driver.create(spec);
    await driver.start(spec.id);
    const net = JSON.parse(await readFile(join(root, 'agent', 'machines', spec.id, 'machine.json'), 'utf8')).network as { ipv4: string };
    assert.equal((await waitHttp(net.ipv4)).body, 'hello from hangar\n');
    assert.equal((await waitHttp(privateIp)).status, 200);
    const ps = await driver.ps(spec.id);
    assert.ok(ps.some((p) => p.command.includes('httpd') && p.listen_sockets.some((s) => s.address.endsWith(':8080'))), JSON.stringify(ps));
    await driver.destroy(spec.id);
  });

  test('env carries the FLY_* variables and config.files are written', async () => {
    const driver = newDriver();
    const spec = withInit({ exec: ['sleep', '1000'] }, {
      env: { GREETING: 'hi' }, metadata: { fly_process_group: 'web' },
      files: [{ guest_path: '/etc/app/conf.txt', raw_value: Buffer.from('configured\n').toString('base64'), mode: 0o600 }],
    });
    const { privateIp } = await driver.create(spec);
    await driver.start(spec.id);
    const env = (await driver.exec(spec.id, { command: ['env'], timeoutMs: 5000 })).stdout;
    for (const line of [`FLY_MACHINE_ID=${spec.id}`, `FLY_PRIVATE_IP=${privateIp}`, 'FLY_PROCESS_GROUP=web', 'GREETING=hi', 'FLY_VM_MEMORY_MB=256', `FLY_MACHINE_VERSION=${spec.version}`]) {
      assert.ok(env.includes(line), `${line} in\n${env}`);
    }
    const file = await driver.exec(spec.id, { command: ['sh', '-c', 'cat /etc/app/conf.txt; stat -c %a /etc/app/conf.txt; hostname'], timeoutMs: 5000 });
    assert.equal(file.stdout, `configured\n600\n${spec.id}\n`);
    await driver.destroy(spec.id);
  });

  test('a restarted machine is a blank slate', async () => {
    const driver = newDriver();
    const spec = withInit({ exec: ['sleep', '1000'] });
    await driver.create(spec);
    await driver.start(spec.id);
    await driver.exec(spec.id, { command: ['touch', '/left-behind'], timeoutMs: 5000 });
    assert.equal((await driver.exec(spec.id, { command: ['ls', '/left-behind'], timeoutMs: 5000 })).exit_code, 0);
    await driver.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    await driver.start(spec.id);
    assert.notEqual((await driver.exec(spec.id, { command: ['ls', '/left-behind'], timeoutMs: 5000 })).exit_code, 0);
    await driver.destroy(spec.id);
  });

  test('the shim mounts the rootfs (no config.files); a mount that fails is the overlay error and leaves nothing mounted', async () => {
    const prepare = providers.images.prepareRootfs.bind(providers.images);
    const broken: ImageProvider = {
      resolve: (image) => providers.images.resolve(image),
      mountRootfs: (dir, lower) => providers.images.mountRootfs(dir, lower),
      unmountRootfs: (dir) => providers.images.unmountRootfs(dir),
      // Prepared as usual, but the lower dir the shim is told to mount does not exist.
      prepareRootfs: async (dir, lower) => {
        const prepared = await prepare(dir, lower);
        return { ...prepared, options: prepared.options.replace(/lowerdir=[^,]+/, `lowerdir=${join(root, 'no-such-lower')}`) };
      },
    };
    const driver = new CrunDriver({ dataDir: join(root, 'agent'), images: broken, network: providers.network });
    drivers.push(driver);
    const spec = withInit({ exec: ['sleep', '1000'] });
    await driver.create(spec);
    await assert.rejects(driver.start(spec.id), (err: Error) => /cannot mount the overlay rootfs/.test(err.message) && /overlayfs/.test(err.message));
    assert.equal((await driver.inspect(spec.id)).state, 'exited');
    assert.deepEqual(await mountsUnder(join(root, 'agent', 'machines', spec.id)), []);
    assert.equal((await driver.runtime.list()).some((c) => c.id === spec.id), false);
    await driver.destroy(spec.id);
  });

  test('the runtime runs from a read-only bind mount of its binary; pins of dead agents are swept; unpin leaves no mount', async () => {
    const pins = join(root, 'pins');
    // A pin left by an agent that died without closing (pid far above pid_max: never alive).
    const stale = join(pins, '999999999-1');
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'crun'), '');
    assert.equal(spawnSync('mount', ['--bind', '/bin/busybox', join(stale, 'crun')]).status, 0);
    const runtime = new OciRuntime(findRuntime()!, join(root, 'pin-state'));
    assert.equal(await runtime.pin(pins), true);
    assert.equal(existsSync(stale), false, 'the dead agent\'s pin is gone');
    assert.notEqual(runtime.command, runtime.bin);
    assert.ok((await mountOptionsOf(runtime.command))?.split(',').includes('ro'));
    await assert.rejects(writeFile(runtime.command, 'x', { flag: 'a' }), /EROFS/);
    assert.equal(runtime.env?._LIBCONTAINER_CLONED_BINARY, '1');
    const listed = await runtime.exec(['list']);
    assert.equal(listed.code, 0, listed.stderr);
    await runtime.unpin();
    assert.equal(runtime.command, runtime.bin);
    assert.deepEqual(await mountsUnder(pins), []);
  });

  test('the main process OOM-killed: exit 137, oom_killed, reported to onExit', async () => {
    const driver = newDriver();
    const got = new Promise<ExitInfo>((resolve) => driver.onExit((_id, exit) => resolve(exit)));
    const spec = withInit({ exec: ['sh', '-c', 'sleep 0.1; exec dd if=/dev/zero of=/dev/null bs=300M count=1'] }, { guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 128 } });
    await driver.create(spec);
    await driver.start(spec.id);
    const exit = await got;
    assert.equal(exit.exit_code, 137);
    assert.equal(exit.oom_killed, true);
    await driver.destroy(spec.id);
  });

  test('a new driver instance (agent restart) re-attaches a running container and its exit', async () => {
    const first = newDriver();
    const spec = withInit({ exec: ['sh', '-c', 'sleep 1; exit 7'] });
    await first.create(spec);
    await first.start(spec.id);
    await first.close();
    const second = newDriver();
    const got = new Promise<ExitInfo>((resolve) => second.onExit((_id, exit) => resolve(exit)));
    const statuses = await second.recover([spec]);
    assert.equal(statuses.get(spec.id)?.state, 'running');
    const exit = await got;
    assert.equal(exit.exit_code, 7);
    assert.equal(exit.requested_stop, false);
    // and it can be stopped/started again by the new instance
    await second.start(spec.id);
    const stopped = await second.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    assert.equal(stopped.requested_stop, true);
    await second.destroy(spec.id);
  });

  test('shims come from the spawner; a killed spawner leaves its machines running and the next start gets a new one; without it the agent spawns them', async () => {
    const driver = newDriver();
    const a = track(baseSpec());
    const b = track(baseSpec());
    const ipv4 = async (id: string) => (JSON.parse(await readFile(join(root, 'agent', 'machines', id, 'machine.json'), 'utf8')).network as { ipv4: string }).ipv4;
    const shimOf = async (id: string) => (JSON.parse(await readFile(join(root, 'agent', 'machines', id, 'run', 'run.json'), 'utf8')) as { shim_pid: number }).shim_pid;
    const parentOf = async (pid: number) => { const st = await readFile(`/proc/${pid}/stat`, 'utf8'); return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]); };
    await driver.create(a);
    await driver.create(b);
    await driver.start(a.id);
    const spawner = driver.runtime.spawnerPid;
    assert.ok(spawner, 'a spawner runs after the first start');
    assert.equal(await parentOf(await shimOf(a.id)), spawner);
    process.kill(spawner, 'SIGKILL');
    await until('the driver to notice the spawner died', () => driver.runtime.spawnerPid === undefined, 2000, 5);
    assert.equal((await waitHttp(await ipv4(a.id))).status, 200, 'its machine keeps running');
    await driver.start(b.id);
    assert.equal((await waitHttp(await ipv4(b.id))).status, 200);
    const second = driver.runtime.spawnerPid;
    assert.ok(second && second !== spawner, 'a new spawner');
    assert.equal(await parentOf(await shimOf(b.id)), second);
    // The orphaned shim still reports its run's end.
    const stopped = await driver.stop(a.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    assert.equal(stopped.requested_stop, true);
    await driver.stop(b.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    await driver.close();
    await until('close to end the spawner', () => !existsSync(`/proc/${second}`), 1000, 5);

    const own = new CrunDriver({ dataDir: join(root, 'agent'), images: providers.images, network: providers.network, shimSpawner: false });
    drivers.push(own);
    await own.recover([a, b]);
    await own.start(a.id);
    assert.equal(own.runtime.spawnerPid, undefined);
    assert.equal(await parentOf(await shimOf(a.id)), process.pid);
    assert.equal((await waitHttp(await ipv4(a.id))).status, 200);
    await own.destroy(a.id);
    await own.destroy(b.id);
  });

  test('over the bridge port budget a stopped machine gives up its netns + veth, keeps its address and MAC, and gets them back on start (also after an agent restart)', async () => {
    const budgeted = () => {
      const d = new CrunDriver({ dataDir: join(root, 'agent'), images: providers.images, network: providers.network, networkPortBudget: 1 });
      drivers.push(d);
      return d;
    };
    const attached = (id: string) => existsSync(`/var/run/netns/hci-${id}`);
    const driver = budgeted();
    const a = track(baseSpec());
    const b = track(baseSpec());
    const ipA = (await driver.create(a)).privateIp;
    await driver.start(a.id);
    assert.equal((await waitHttp(ipA)).status, 200);
    await driver.stop(a.id, { signal: SIGNALS.SIGKILL, timeoutMs: 1000 });
    assert.equal(attached(a.id), true, 'one port: within the budget');
    const ipB = (await driver.create(b)).privateIp;
    await driver.start(b.id);
    await until('the stopped machine to give up its netns', () => !attached(a.id), 2000, 5);
    assert.equal(attached(b.id), true, 'the running one keeps its network');
    assert.equal((await waitHttp(ipB)).status, 200);
    await driver.start(a.id);
    // Same address, and at once: the host's neighbour entry for it is still right (same MAC).
    assert.equal((await waitHttp(ipA, 8080, 900)).status, 200);
    assert.equal(attached(b.id), true, 'running machines are never parked');

    // Agent restart with A parked: A is no orphan (its address stays), B keeps running and answering.
    await driver.stop(a.id, { signal: SIGNALS.SIGKILL, timeoutMs: 1000 });
    await until('the stopped machine to give up its netns', () => !attached(a.id), 2000, 5);
    await driver.close();
    const second = budgeted();
    const statuses = await second.recover([a, b]);
    assert.equal(statuses.get(a.id)?.state, 'exited');
    assert.equal(statuses.get(b.id)?.state, 'running');
    assert.equal((await waitHttp(ipB)).status, 200);
    await second.start(a.id);
    assert.equal((await waitHttp(ipA, 8080, 900)).status, 200);
    await second.destroy(a.id);
    await second.destroy(b.id);
  });

  test('destroy leaves nothing: no mounts, container, machine dir or netns', async () => {
    const driver = newDriver();
    const spec = withInit({ exec: ['sleep', '1000'] });
    await driver.create(spec);
    await driver.start(spec.id);
    const dir = join(root, 'agent', 'machines', spec.id);
    assert.ok((await mountsUnder(dir)).length > 0);
    await driver.destroy(spec.id);
    assert.deepEqual(await mountsUnder(dir), []);
    assert.equal(existsSync(dir), false);
    assert.equal((await driver.runtime.list()).some((c) => c.id === spec.id), false);
    assert.equal(existsSync(`/var/run/netns/hci-${spec.id}`), false);
    assert.equal(existsSync(`/sys/fs/cgroup/memory/hangar/${spec.id}`), false);
  });

  test('warm set: a stopped machine gets a fresh mounted overlay; its start is blank; eviction and destroy unmount it', async () => {
    const driver = new CrunDriver({ dataDir: join(root, 'agent'), images: providers.images, network: providers.network, warmRootfsLimit: 1 });
    drivers.push(driver);
    const a = withInit({ exec: ['sleep', '1000'] });
    const b = withInit({ exec: ['sleep', '1000'] });
    const dirA = join(root, 'agent', 'machines', a.id);
    const dirB = join(root, 'agent', 'machines', b.id);
    await driver.create(a);
    await driver.create(b);
    await driver.start(a.id);
    await driver.exec(a.id, { command: ['touch', '/left-behind'], timeoutMs: 5000 });
    await driver.stop(a.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    await mountedIn(dirA, true);
    assert.deepEqual(driver.warmMachines(), [a.id]);
    assert.deepEqual(await readdir(join(dirA, 'upper')), [], 'the warm upper dir is fresh');
    // The start takes the warm overlay (out of the set) and runs on a never-used upper dir.
    await driver.start(a.id);
    assert.deepEqual(driver.warmMachines(), []);
    assert.notEqual((await driver.exec(a.id, { command: ['ls', '/left-behind'], timeoutMs: 5000 })).exit_code, 0);
    assert.equal((await driver.exec(a.id, { command: ['ls', '/bin/busybox'], timeoutMs: 5000 })).exit_code, 0);
    await driver.start(b.id);
    await driver.stop(b.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    await mountedIn(dirB, true);
    // Over the limit of 1: the least recently stopped (b) is unmounted.
    await driver.stop(a.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    await mountedIn(dirA, true);
    await mountedIn(dirB, false);
    assert.deepEqual(driver.warmMachines(), [a.id]);
    assert.deepEqual(await mountsUnder(dirB), []);
    // Destroying a warm machine leaves nothing.
    await driver.destroy(a.id);
    assert.deepEqual(await mountsUnder(dirA), []);
    assert.equal(existsSync(dirA), false);
    assert.deepEqual(driver.warmMachines(), []);
    // A start of b right after its stop (the warm-up still in flight) waits for it and is blank too.
    await driver.start(b.id);
    await driver.exec(b.id, { command: ['touch', '/left-behind'], timeoutMs: 5000 });
    await driver.stop(b.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    await driver.start(b.id);
    assert.notEqual((await driver.exec(b.id, { command: ['ls', '/left-behind'], timeoutMs: 5000 })).exit_code, 0);
    await driver.destroy(b.id);
    assert.deepEqual(await mountsUnder(dirB), []);
  });

  test('warm set: a new version with another image does not start on the old image\'s warm overlay', async () => {
    const driver = newDriver();
    const spec = withInit({ exec: ['sleep', '1000'] });
    const dir = join(root, 'agent', 'machines', spec.id);
    await driver.create(spec);
    await driver.start(spec.id);
    await driver.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    for (const deadline = Date.now() + 3000; (await mountOptionsOf(join(dir, 'rootfs'))) === undefined;) {
      if (Date.now() > deadline) assert.fail('no warm overlay after the stop');
      await new Promise((r) => setTimeout(r, 10));
    }
    // Another image for the next version: a lower dir of its own (a copy of busybox's with a marker).
    const image = await providers.images.resolve(spec.config.image);
    const otherLower = join(root, 'other-image-rootfs');
    spawnSync('cp', ['-a', image.rootfsDir, otherLower]);
    await writeFile(join(otherLower, 'version-2'), '2\n');
    // The driver sees the new image through create (what an update does): swap the provider's answer meanwhile.
    const original = providers.images.resolve.bind(providers.images);
    providers.images.resolve = async (name: string, options?: { signal?: AbortSignal }) => ({ ...(await original(name, options)), rootfsDir: otherLower });
    try {
      await driver.create(spec);
    } finally {
      providers.images.resolve = original;
    }
    await driver.start(spec.id);
    assert.equal((await driver.exec(spec.id, { command: ['cat', '/version-2'], timeoutMs: 5000 })).stdout, '2\n');
    await driver.destroy(spec.id);
    assert.deepEqual(await mountsUnder(dir), []);
    await rm(otherLower, { recursive: true, force: true });
  });

  test('warm set: driver close unmounts warm overlays; recovery after a crash unmounts those of known machines and destroys unknown ones', async () => {
    const a = withInit({ exec: ['sleep', '1000'] });
    const b = withInit({ exec: ['sleep', '1000'] });
    const dirA = join(root, 'agent', 'machines', a.id);
    const dirB = join(root, 'agent', 'machines', b.id);
    const first = newDriver();
    for (const spec of [a, b]) {
      await first.create(spec);
      await first.start(spec.id);
      await first.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
      await mountedIn(join(root, 'agent', 'machines', spec.id), true);
    }
    await first.close();
    assert.deepEqual(await mountsUnder(dirA), []);
    assert.deepEqual(await mountsUnder(dirB), []);
    // A crash: the driver holding warm overlays is never closed; the next one recovers.
    const crashed = newDriver();
    const recovered = await crashed.recover([a, b]);
    assert.equal(recovered.get(a.id)?.state, 'exited');
    for (const spec of [a, b]) {
      await crashed.start(spec.id);
      await crashed.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
    }
    await mountedIn(dirA, true);
    await mountedIn(dirB, true);
    const next = newDriver();
    await next.recover([a]);
    assert.deepEqual(await mountsUnder(dirB), [], 'an unknown machine is destroyed with its warm overlay');
    assert.equal(existsSync(dirB), false);
    await mountedIn(dirA, false);
    await next.start(a.id);
    assert.equal((await next.inspect(a.id)).state, 'running');
    await next.destroy(a.id);
    assert.deepEqual(await mountsUnder(dirA), []);
  });

  test('logs: tail and follow of stdout and stderr', async () => {
    const driver = newDriver();
    const spec = withInit({ exec: ['sh', '-c', 'echo one; echo two >&2; sleep 0.3; echo three; sleep 1000'] });
    await driver.create(spec);
    await driver.start(spec.id);
    await new Promise((r) => setTimeout(r, 100));
    const abort = new AbortController();
    const seen: string[] = [];
    for await (const line of driver.readLogs(spec.id, { tail: 10, follow: true, signal: abort.signal })) {
      seen.push(`${line.stream}:${line.message}`);
      assert.ok(!Number.isNaN(Date.parse(line.timestamp)));
      if (line.message === 'three') abort.abort();
    }
    assert.deepEqual(seen.sort(), ['stderr:two', 'stdout:one', 'stdout:three']);
    await driver.destroy(spec.id);
  });
});
