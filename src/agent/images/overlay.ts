/**
 * Per-machine root filesystems: an overlay whose lower layer is the shared, read-only unpacked
 * image and whose upper/work dirs live in the machine's directory. The upper dir is wiped before
 * every mount, so a started machine always begins from the image (Fly's blank-slate rootfs).
 *
 * Layout under `machineDir`: `rootfs/` (the merged mount point), `upper/`, `work/`.
 * @module
 */
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HangarError } from '../../core/errors.js';
import { run } from './exec.js';

export function machineRootfsPaths(machineDir: string): { merged: string; upper: string; work: string } {
  const dir = resolve(machineDir);
  return { merged: join(dir, 'rootfs'), upper: join(dir, 'upper'), work: join(dir, 'work') };
}

/** A prepared (not yet mounted) machine rootfs: where it goes and the overlay's mount options. */
export interface PreparedRootfs {
  merged: string;
  options: string;
}

/**
 * Everything of `mountMachineRootfs` but the mount itself: checks the paths, unmounts a previous
 * mount, wipes upper/work and creates the dirs. The caller mounts (`overlayMounter()` with
 * `-t overlay overlay -o OPTIONS MERGED`), e.g. in the process that runs the container next.
 */
export async function prepareMachineRootfs(machineDir: string, lowerDir: string): Promise<PreparedRootfs> {
  const { merged, upper, work } = machineRootfsPaths(machineDir);
  const lower = resolve(lowerDir);
  for (const p of [lower, upper, work]) {
    if (/[,:\\\n]/.test(p)) {
      throw new HangarError('invalid_argument', `overlay path ${p} contains a comma, colon or backslash, which mount options cannot carry; use a plain path for the data dir`);
    }
  }
  // The check of the image and the removal of a previous mount (crash, double start: the new one
  // must start from a blank upper) are independent; this runs on every start, so they overlap.
  const [st] = await Promise.all([stat(lower).catch(() => undefined), unmountMachineRootfs(machineDir, { keepUpper: true })]);
  if (!st?.isDirectory()) {
    throw new HangarError('failed_precondition', `image rootfs ${lower} does not exist; resolve the image again before starting the machine`);
  }
  const fresh = (dir: string) => rm(dir, { recursive: true, force: true }).then(() => mkdir(dir, { recursive: true }));
  await Promise.all([fresh(upper), fresh(work), mkdir(merged, { recursive: true })]);
  return { merged, options: `lowerdir=${lower},upperdir=${upper},workdir=${work}` };
}

/** Mounts a fresh overlay (upper/work wiped first) and returns the merged rootfs path. Idempotent. */
export async function mountMachineRootfs(machineDir: string, lowerDir: string): Promise<string> {
  const { merged, options } = await prepareMachineRootfs(machineDir, lowerDir);
  const [cmd, ...pre] = overlayMounter().split(' ');
  const res = await run(cmd!, [...pre, '-t', 'overlay', 'overlay', '-o', options, merged]);
  if (res.code !== 0) throw overlayMountError(machineDir, res.stderr);
  return merged;
}

/** The error of a failed overlay mount, with what to check. */
export function overlayMountError(machineDir: string, stderr: string): HangarError {
  return new HangarError('failed_precondition',
    `cannot mount the overlay rootfs for ${machineDir}: ${stderr}; the agent must run as root on a kernel with overlayfs ` +
    '(modprobe overlay), and the data dir must not itself be on overlayfs');
}

/** Static busybox (`hangar host setup` installs busybox-static): the overlay mounter, and the crun driver's shim spawner. */
export const BUSYBOX = '/bin/busybox';

const BUSYBOX_MOUNT = `${BUSYBOX} mount`;
let busybox: boolean | undefined;

/** Whether the host has an executable `/bin/busybox`; looked up once per process. */
export function hasBusybox(): boolean {
  if (busybox === undefined) {
    try {
      accessSync(BUSYBOX, constants.X_OK);
      busybox = true;
    } catch {
      busybox = false;
    }
  }
  return busybox;
}

/**
 * The mount command for overlays: busybox's applet when the host has `/bin/busybox` (static: it
 * starts in ~1 ms less than util-linux `mount`, which loads libmount, libblkid and libselinux),
 * else `mount`. Words separated by a space.
 */
export function overlayMounter(): string {
  return hasBusybox() ? BUSYBOX_MOUNT : 'mount';
}

/**
 * Unmounts the machine's overlay (lazily if it is busy) and removes upper/work. Idempotent: a
 * machine without a mount is fine.
 */
export async function unmountMachineRootfs(machineDir: string, options: { keepUpper?: boolean } = {}): Promise<void> {
  const { merged, upper, work } = machineRootfsPaths(machineDir);
  for (let attempt = 0; attempt < 8 && (await isMountPoint(merged)); attempt++) {
    const res = await run('umount', [merged]);
    if (res.code === 0) continue;
    const lazy = await run('umount', ['-l', merged]);
    if (lazy.code !== 0 && (await isMountPoint(merged))) {
      throw new HangarError('unknown', `cannot unmount ${merged}: ${res.stderr}; ${lazy.stderr}; check for processes using it (fuser -vm ${merged})`);
    }
  }
  if (!options.keepUpper) {
    await rm(upper, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

/** True when `path` is a mount point in this mount namespace. */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountOptionsOf(path)) !== undefined;
}

/** The per-mount options (`ro,relatime`) of the topmost mount at `path`, or undefined when it is not a mount point. */
export async function mountOptionsOf(path: string): Promise<string | undefined> {
  const target = resolve(path);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  let options: string | undefined;
  for (const line of info.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] && unescapeMountinfo(fields[4]) === target) options = fields[5] ?? '';
  }
  return options;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or under `dir` (deepest first), from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => !!p)
    .map(unescapeMountinfo)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
