/**
 * The runtime floor used as the reference by the machine benches: a bare `crun run -d` of a
 * machine's own bundle (same config.json: rootfs overlay, netns, cgroup limits, tini), timed from
 * the spawn to the first HTTP 200 on the machine's address. The overlay is mounted before each run
 * (untimed) and unmounted after; the container gets its own id, is killed and deleted each time.
 * The machine must be stopped (its rootfs unmounted) while this runs.
 * @module
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountMachineRootfs, unmountMachineRootfs } from '../../src/agent/images/image-store.js';
import { firstOk, sleep } from './crun-hangar.js';

function crun(root: string, args: string[]): Promise<number> {
  return new Promise((resolve) => spawn('crun', ['--root', root, ...args], { stdio: 'ignore' }).on('close', (c) => resolve(c ?? 1)).on('error', () => resolve(1)));
}

export async function bareCrunToHttp(o: { machineDir: string; runtimeRoot: string; lowerDir: string | undefined; host: string; runs: number }): Promise<number[]> {
  const config = JSON.parse(readFileSync(join(o.machineDir, 'bundle', 'config.json'), 'utf8')) as { root: { path: string } };
  const saved = JSON.parse(readFileSync(join(o.machineDir, 'machine.json'), 'utf8')) as { image: { rootfsDir: string } };
  const lower = o.lowerDir ?? saved.image.rootfsDir;
  const id = `bare-${o.machineDir.split('/').pop()}`;
  const samples: number[] = [];
  try {
    for (let i = 0; i < o.runs + 3; i++) {
      await mountMachineRootfs(o.machineDir, lower);
      const began = performance.now();
      const child = spawn('crun', ['--root', o.runtimeRoot, 'run', '-d', '--bundle', join(o.machineDir, 'bundle'), id], { stdio: 'ignore' });
      await firstOk(o.host);
      if (i >= 3) samples.push(performance.now() - began);
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await crun(o.runtimeRoot, ['kill', id, 'KILL']);
      for (let j = 0; j < 200 && (await crun(o.runtimeRoot, ['state', id])) === 0; j++) {
        if ((await crun(o.runtimeRoot, ['delete', id])) === 0) break;
        await sleep(2);
      }
      await crun(o.runtimeRoot, ['delete', '--force', id]);
      await unmountMachineRootfs(o.machineDir);
    }
  } finally {
    await crun(o.runtimeRoot, ['delete', '--force', id]);
    await unmountMachineRootfs(o.machineDir).catch(() => {});
  }
  void config;
  return samples;
}
