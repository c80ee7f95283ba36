/**
 * Cold image pull: a ~100 MB image (busybox + one layer of random, incompressible bytes) from a
 * local `docker-registry` on loopback, through `ImageStore.resolve` into an empty store, against
 * `skopeo copy docker://… oci:…` of the same image in the same run. Each round uses fresh
 * directories; rounds alternate the two so neither gets a warmer registry page cache.
 *
 * Reported: pull only (ImageStore's own "image pulled" time: manifests + verified blobs in the
 * layout) vs `skopeo copy`, and the whole resolve (pull + `umoci raw unpack`) vs `skopeo copy`
 * followed by `umoci raw unpack`. Target: pull ratio ≤ 1.5.
 *
 * Run: `npm run build && node dist/bench/image-pull.js` (root; needs docker-registry, skopeo, umoci).
 * Env: BENCH_IMAGE_MB (default 100), BENCH_ROUNDS (default 3). Writes bench/results/image-pull.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from '../src/agent/images/image-store.js';
import type { Logger } from '../src/core/logger.js';
import { buildBigImage } from '../src/testkit/images.js';
import { repoRoot } from '../src/testkit/paths.js';
import { startRegistry } from '../src/testkit/registry.js';
import { median } from './lib/stats.js';

const SIZE_MB = Number(process.env.BENCH_IMAGE_MB ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function timed(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const res = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr}`);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'hangar-bench-image-'));
  const registry = await startRegistry();
  try {
    const built = buildBigImage({ dir: join(work, 'layout'), tag: 'big', sizeMB: SIZE_MB });
    const digest = await registry.push(built.layoutDir, 'big:1');
    const compressedBytes = built.layers.reduce((n, l) => n + l.size, 0);
    const image = `${registry.host}/big:1`;

    const store = { pull: [] as number[], total: [] as number[] };
    const skopeo = { pull: [] as number[], total: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      // ImageStore: a fresh, empty store each round.
      let pulledMs = NaN;
      const logger: Logger = {
        info: (msg, fields) => {
          if (msg === 'image pulled') pulledMs = Number(fields?.['ms']);
        },
        warn() {},
        error() {},
        child: () => logger,
      };
      const storeDir = join(work, `store-${round}`);
      const t0 = performance.now();
      const resolved = await new ImageStore({ dir: storeDir, logger }).resolve(image);
      store.total.push(performance.now() - t0);
      store.pull.push(pulledMs);
      if (resolved.digest !== digest) throw new Error(`resolved ${resolved.digest}, pushed ${digest}`);
      rmSync(storeDir, { recursive: true, force: true });

      // skopeo copy into an OCI layout, then umoci raw unpack (what the store does, by hand).
      const layout = join(work, `skopeo-${round}`);
      mkdirSync(join(layout, 'bundle'), { recursive: true });
      const copyMs = timed('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', `docker://${image}`, `oci:${layout}/oci:img`]);
      const unpackMs = timed('umoci', ['raw', 'unpack', '--image', `${layout}/oci:img`, join(layout, 'bundle', 'rootfs')]);
      skopeo.pull.push(copyMs);
      skopeo.total.push(copyMs + unpackMs);
      rmSync(layout, { recursive: true, force: true });
      console.log(`round ${round + 1}: store pull ${pulledMs.toFixed(0)} ms (resolve ${store.total.at(-1)!.toFixed(0)} ms), ` +
        `skopeo copy ${copyMs.toFixed(0)} ms (+ umoci unpack ${unpackMs.toFixed(0)} ms)`);
    }

    const round1 = (n: number) => Math.round(n * 10) / 10;
    const result = {
      benchmark: 'image-pull',
      date: new Date().toISOString(),
      node: process.version,
      image: { size_mb: SIZE_MB, compressed_bytes: compressedBytes, layers: built.layers.length, digest },
      rounds: ROUNDS,
      image_store: { pull_ms_median: round1(median(store.pull)), resolve_ms_median: round1(median(store.total)), pull_ms: store.pull.map(round1), resolve_ms: store.total.map(round1) },
      skopeo: { copy_ms_median: round1(median(skopeo.pull)), copy_plus_unpack_ms_median: round1(median(skopeo.total)), copy_ms: skopeo.pull.map(round1), copy_plus_unpack_ms: skopeo.total.map(round1) },
      ratio_pull: Math.round((median(store.pull) / median(skopeo.pull)) * 100) / 100,
      ratio_resolve_vs_copy_plus_unpack: Math.round((median(store.total) / median(skopeo.total)) * 100) / 100,
      target_ratio: 1.5,
    };
    const outDir = join(repoRoot(), 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'image-pull.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await registry.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
