/**
 * Machine creation on crun through the public API of a real `hangar up --driver crun`:
 *   1. latency: POST /v1/apps/{app}/machines (image already in the agent's store, so no pull)
 *      → first HTTP 200 from the app on the machine's private IP; BENCH_CREATES samples (default
 *      50), each machine destroyed (untimed) before the next;
 *   2. rate: 200 machines (BENCH_RATE_MACHINES) created and started by 8 concurrent API clients,
 *      from the first request to the last answer (each answer means the machine is started), and
 *      until all 200 answer HTTP; then all destroyed.
 * Reference measured in the same run: a bare `crun run -d` of the bundle of a machine of this
 * agent (overlay mounted beforehand, untimed) → first HTTP 200 (the runtime's floor for phase 1).
 * Targets (issue: runtime): create → HTTP p50 ≤ 80 ms; ≥ 20 machines/s over 200 machines.
 * Writes bench/results/machine-create.json. Bounded: every wait has a limit; everything created
 * is destroyed at the end, also on failure.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/machine-create.js
 * @module
 */
import { join } from 'node:path';
import { crunUnavailable } from '../src/agent/drivers/crun/testing.js';
import { bound, firstOk, startCrunHangar, stats, writeResult } from './lib/crun-hangar.js';
import { bareCrunToHttp } from './lib/bare-crun.js';

const CREATES = Number(process.env.BENCH_CREATES ?? 50);
const RATE_MACHINES = Number(process.env.BENCH_RATE_MACHINES ?? 200);
const CONCURRENCY = 8;

interface Created { id: string; private_ip: string }

async function main(): Promise<void> {
  const unavailable = crunUnavailable();
  if (unavailable) throw new Error(`cannot run the benchmark here: ${unavailable}`);
  const h = await startCrunHangar('create', { bridge: 'hgbk0', ipv4Cidr: '10.183.0.0/16', ipv6Net: 0xb53, netnsPrefix: 'hbk-', nftTable: 'hangar_hgbk0' });
  const create = () => h.api.call<Created>('POST', '/v1/apps/bench/machines', { config: { image: h.image, restart: { policy: 'no' } } });
  const destroy = (id: string) => h.api.call('DELETE', `/v1/apps/bench/machines/${id}?force=true`);
  const latency: number[] = [];
  let bare: number[] = [];
  let rate: Record<string, number> = {};
  try {
    // Warm-up: the first create pulls the image into the agent's store.
    const first = await create();
    await firstOk(first.private_ip, 8080, 30_000);
    await destroy(first.id);
    for (let i = 0; i < CREATES + 3; i++) {
      const began = performance.now();
      const m = await create();
      await firstOk(m.private_ip);
      if (i >= 3) latency.push(performance.now() - began);
      await destroy(m.id);
    }

    // The floor: bare crun on the bundle of one (stopped) machine of this agent.
    const ref = await create();
    await h.api.call('POST', `/v1/apps/bench/machines/${ref.id}/stop`, { signal: 'SIGKILL', timeout: '1s' });
    await h.api.call('GET', `/v1/apps/bench/machines/${ref.id}/wait?state=stopped&timeout=10`);
    bare = await bareCrunToHttp({ machineDir: join(h.dir, 'data', 'agent', 'machines', ref.id), runtimeRoot: h.runtimeRoot, lowerDir: undefined, host: ref.private_ip, runs: Math.min(CREATES, 30) });
    await destroy(ref.id);

    // Creation rate over RATE_MACHINES machines, 8 concurrent clients.
    const ids: Created[] = [];
    let next = 0;
    const began = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < RATE_MACHINES) {
        next++;
        ids.push(await create());
      }
    }));
    const createdS = (performance.now() - began) / 1000;
    for (const m of ids) await firstOk(m.private_ip, 8080, 10_000);
    const answeringS = (performance.now() - began) / 1000;
    const destroyBegan = performance.now();
    let d = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (d < ids.length) await destroy(ids[d++]!.id);
    }));
    rate = {
      machines: ids.length,
      concurrency: CONCURRENCY,
      created_and_started_s: Math.round(createdS * 100) / 100,
      per_second: Math.round((ids.length / createdS) * 10) / 10,
      all_answering_http_s: Math.round(answeringS * 100) / 100,
      destroy_per_second: Math.round((ids.length / ((performance.now() - destroyBegan) / 1000)) * 10) / 10,
    };
  } finally {
    await Promise.race([h.close(), bound(300_000)]);
  }
  const l = stats(latency);
  const b = stats(bare);
  await writeResult('machine-create', {
    benchmark: 'machine-create',
    date: new Date().toISOString(),
    host: { node: process.version },
    what: 'POST /v1/apps/{app}/machines with a cached image → first HTTP 200 on the private IP (public API of `hangar up --driver crun`); creation rate of 200 machines with 8 concurrent clients; reference: bare `crun run -d` of a machine bundle → HTTP 200',
    create_to_http_200_ms: l,
    bare_crun_run_to_http_200_ms: b,
    ratio_p50_vs_bare: Math.round((l.p50 / b.p50) * 100) / 100,
    rate,
    targets: { create_to_http_200_p50_ms: 80, per_second: 20 },
    met: { latency: l.p50 <= 80, rate: (rate.per_second ?? 0) >= 20 },
  });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
