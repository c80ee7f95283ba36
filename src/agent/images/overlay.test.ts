import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HangarError } from '../../core/errors.js';
import { isMountPoint, mountMachineRootfs, unmountMachineRootfs } from './overlay.js';

const skip = process.getuid?.() !== 0 ? 'overlay mounts need root' : false;

describe('per-machine overlay rootfs', { skip, timeout: 30_000 }, () => {
  let dir: string;
  let lower: string;
  const machines: string[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-overlay-test-'));
    lower = join(dir, 'image', 'rootfs');
    mkdirSync(join(lower, 'etc'), { recursive: true });
    writeFileSync(join(lower, 'etc', 'base'), 'from-image');
  });
  after(async () => {
    for (const m of machines) await unmountMachineRootfs(m).catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('mounts, and every mount starts from a blank slate; the lower dir is never written', { timeout: 10_000 }, async () => {
    const m = join(dir, 'm1');
    machines.push(m);
    const merged = await mountMachineRootfs(m, lower);
    assert.equal(merged, join(m, 'rootfs'));
    assert.ok(await isMountPoint(merged));
    assert.equal(readFileSync(join(merged, 'etc', 'base'), 'utf8'), 'from-image');
    writeFileSync(join(merged, 'etc', 'scratch'), 'machine-wrote-this');
    writeFileSync(join(merged, 'etc', 'base'), 'changed');
    assert.ok(existsSync(join(m, 'upper', 'etc', 'scratch')));
    assert.deepEqual(readdirSync(join(lower, 'etc')), ['base'], 'lower untouched');
    assert.equal(readFileSync(join(lower, 'etc', 'base'), 'utf8'), 'from-image');

    // Remount without unmounting first (agent crash): still a blank slate.
    const again = await mountMachineRootfs(m, lower);
    assert.equal(existsSync(join(again, 'etc', 'scratch')), false);
    assert.equal(readFileSync(join(again, 'etc', 'base'), 'utf8'), 'from-image');
    writeFileSync(join(again, 'etc', 'scratch'), 'x');

    await unmountMachineRootfs(m);
    assert.equal(await isMountPoint(merged), false);
    assert.equal(existsSync(join(m, 'upper')), false, 'upper wiped on unmount');
    const third = await mountMachineRootfs(m, lower);
    assert.equal(existsSync(join(third, 'etc', 'scratch')), false);
    await unmountMachineRootfs(m);
    await unmountMachineRootfs(m); // idempotent
    await unmountMachineRootfs(join(dir, 'never-mounted'));
  });

  it('two machines share one lower dir independently', { timeout: 10_000 }, async () => {
    const a = join(dir, 'ma');
    const b = join(dir, 'mb');
    machines.push(a, b);
    const ra = await mountMachineRootfs(a, lower);
    const rb = await mountMachineRootfs(b, lower);
    writeFileSync(join(ra, 'only-a'), 'a');
    assert.equal(existsSync(join(rb, 'only-a')), false);
    await unmountMachineRootfs(a);
    await unmountMachineRootfs(b);
  });

  it('falls back to a lazy unmount when the mount is busy', { timeout: 10_000 }, async () => {
    const m = join(dir, 'busy');
    machines.push(m);
    const merged = await mountMachineRootfs(m, lower);
    const { spawn } = await import('node:child_process');
    const holder = spawn('sleep', ['30'], { cwd: merged, stdio: 'ignore' });
    await new Promise((r) => holder.once('spawn', r));
    try {
      await unmountMachineRootfs(m);
      assert.equal(await isMountPoint(merged), false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('refuses a missing lower dir with failed_precondition', { timeout: 5_000 }, async () => {
    await assert.rejects(mountMachineRootfs(join(dir, 'mx'), join(dir, 'nope')),
      (e: unknown) => e instanceof HangarError && e.code === 'failed_precondition' && /does not exist/.test(e.message));
  });
});
