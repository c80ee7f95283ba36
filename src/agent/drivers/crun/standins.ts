/**
 * Minimal stand-ins for the image store and the host network, so the crun driver runs (and is
 * tested) on its own:
 * - `BusyboxImages`: every image name resolves to one busybox-static rootfs (the host's
 *   /bin/busybox plus applet symlinks), unpacked once under the data dir; per-machine overlay
 *   with a fresh upper dir.
 * - `StandinNetwork`: a netns + veth per machine on a test bridge (`hgsb0`, 10.254.0.0/16 and
 *   fdaa:0:ffff::/64), addresses claimed through lock files so parallel test processes never share
 *   one. It only ever touches machines it attached itself (its state dir).
 * The real modules (`src/agent/images`, `src/agent/network`) replace these in production.
 * @module
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rm, symlink, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HangarError } from '../../../core/errors.js';
import type { DriverImage, DriverNetwork, ImageProvider, NetworkProvider } from './providers.js';
import { mountsUnder } from '../../images/overlay.js';

const run = promisify(execFile);

export class BusyboxImages implements ImageProvider {
  private ready: Promise<string> | undefined;
  constructor(private readonly dir: string, private readonly busybox = '/bin/busybox') {}

  async resolve(image: string): Promise<DriverImage> {
    this.ready ??= this.unpack();
    const rootfsDir = await this.ready;
    return {
      name: image,
      digest: 'sha256:standin-busybox',
      imageRef: { registry: 'standin', repository: 'busybox', tag: 'latest', digest: 'sha256:standin-busybox', labels: {} },
      config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], WorkingDir: '/' },
      rootfsDir,
    };
  }

  private async unpack(): Promise<string> {
    const rootfs = join(this.dir, 'standin-busybox', 'rootfs');
    if (existsSync(join(rootfs, '.complete'))) return rootfs;
    const tmp = `${rootfs}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    for (const d of ['bin', 'etc', 'tmp', 'var/www', 'root', 'proc', 'sys', 'dev']) await mkdir(join(tmp, d), { recursive: true });
    await copyFile(this.busybox, join(tmp, 'bin', 'busybox'));
    const { stdout } = await run(this.busybox, ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) await symlink('busybox', join(tmp, 'bin', applet)).catch(() => {});
    await writeFile(join(tmp, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(tmp, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    await writeFile(join(tmp, 'var', 'www', 'index.html'), 'hello from hangar\n');
    await writeFile(join(tmp, '.complete'), '');
    await mkdir(join(this.dir, 'standin-busybox'), { recursive: true });
    await rename(tmp, rootfs).catch(async (err) => {
      if (!existsSync(join(rootfs, '.complete'))) throw err; // another process won the race
      await rm(tmp, { recursive: true, force: true });
    });
    return rootfs;
  }

  mountRootfs(machineDir: string, lowerDir: string): Promise<string> {
    return mountOverlay(machineDir, lowerDir);
  }

  unmountRootfs(machineDir: string): Promise<void> {
    return unmountOverlay(machineDir);
  }
}

/** overlay at machineDir/rootfs/merged with a fresh upper dir (a restarted machine is a blank slate). */
export async function mountOverlay(machineDir: string, lowerDir: string): Promise<string> {
  const base = join(machineDir, 'rootfs');
  const merged = join(base, 'merged');
  await unmountOverlay(machineDir);
  await rm(join(base, 'upper'), { recursive: true, force: true });
  await rm(join(base, 'work'), { recursive: true, force: true });
  await Promise.all(['upper', 'work', 'merged'].map((d) => mkdir(join(base, d), { recursive: true })));
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerDir},upperdir=${base}/upper,workdir=${base}/work`, merged]);
  } catch (err) {
    throw new HangarError('unknown', `could not mount the machine's rootfs at ${merged}: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`);
  }
  return merged;
}

export async function unmountOverlay(machineDir: string): Promise<void> {
  for (const mount of await mountsUnder(machineDir)) await run('umount', ['-l', mount]).catch(() => {});
}

const BRIDGE = 'hgsb0';
const LOCK_DIR = '/run/hangar-standin-net';

export class StandinNetwork implements NetworkProvider {
  private bridge: Promise<void> | undefined;
  constructor(private readonly stateDir: string) {}

  private async setup(): Promise<void> {
    const ip = async (...args: string[]) => run('ip', args).catch((e: { stderr?: string }) => {
      if (!/File exists|already assigned/i.test(e.stderr ?? '')) throw e;
    });
    await ip('link', 'add', BRIDGE, 'type', 'bridge');
    await ip('addr', 'add', '10.254.0.1/16', 'dev', BRIDGE);
    await ip('-6', 'addr', 'add', 'fdaa:0:ffff::1/64', 'dev', BRIDGE, 'nodad');
    await ip('link', 'set', BRIDGE, 'up');
    await mkdir(LOCK_DIR, { recursive: true });
    await mkdir(this.stateDir, { recursive: true });
  }

  async attach(m: { machineId: string }): Promise<DriverNetwork> {
    this.bridge ??= this.setup();
    await this.bridge;
    const stateFile = join(this.stateDir, `${m.machineId}.json`);
    const netns = `hangar-${m.machineId}`;
    const netnsPath = `/var/run/netns/${netns}`;
    const saved = await readFile(stateFile, 'utf8').then((t) => JSON.parse(t) as DriverNetwork, () => undefined);
    if (saved && existsSync(netnsPath)) return saved;
    const n = await this.claim(m.machineId);
    const net: DriverNetwork = {
      netnsPath, ipv4: `10.254.${n >> 8}.${n & 255}`, ipv6: `fdaa:0:ffff::${n.toString(16)}`,
      gateway4: '10.254.0.1', gateway6: 'fdaa:0:ffff::1', dnsServer: 'fdaa:0:ffff::1',
    };
    const veth = `h${m.machineId}`;
    await run('ip', ['netns', 'del', netns]).catch(() => {});
    await run('ip', ['link', 'del', veth]).catch(() => {});
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    await run('ip', ['link', 'set', veth, 'master', BRIDGE, 'up']);
    await batch(['-n', netns], [
      `addr add ${net.ipv4}/16 dev eth0`, `addr add ${net.ipv6}/64 dev eth0 nodad`,
      'link set lo up', 'link set eth0 up', `route add default via ${net.gateway4}`, `route add default via ${net.gateway6}`,
    ]);
    await writeFile(stateFile, JSON.stringify({ ...net, n }));
    return net;
  }

  private async claim(id: string): Promise<number> {
    const existing = await readFile(join(this.stateDir, `${id}.json`), 'utf8').then((t) => (JSON.parse(t) as { n: number }).n, () => undefined);
    if (existing !== undefined) return existing;
    for (let i = 0; i < 1000; i++) {
      const n = randomInt(2, 65_000);
      try {
        await writeFile(join(LOCK_DIR, String(n)), id, { flag: 'wx' });
        return n;
      } catch {
        // taken; try another
      }
    }
    throw new HangarError('insufficient_capacity', 'stand-in network: no free address');
  }

  async detach(machineId: string): Promise<void> {
    await run('ip', ['netns', 'del', `hangar-${machineId}`]).catch(() => {});
    await run('ip', ['link', 'del', `h${machineId}`]).catch(() => {});
    const stateFile = join(this.stateDir, `${machineId}.json`);
    const n = await readFile(stateFile, 'utf8').then((t) => (JSON.parse(t) as { n: number }).n, () => undefined);
    if (n !== undefined) await rm(join(LOCK_DIR, String(n)), { force: true });
    await rm(stateFile, { force: true });
  }

  async recover(known: Set<string>): Promise<void> {
    const files = await readdir(this.stateDir).catch(() => [] as string[]);
    for (const f of files) {
      const id = f.replace(/\.json$/, '');
      if (!known.has(id)) await this.detach(id);
    }
  }

  async close(): Promise<void> {}
}

async function batch(global: string[], lines: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', [...global, '-batch', '-'], (err, _o, stderr) => (err ? reject(new Error(`ip -batch: ${stderr || err.message}`)) : resolve()));
    child.stdin!.end(`${lines.join('\n')}\n`);
  });
}

