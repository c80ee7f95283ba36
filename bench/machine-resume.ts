/**
 * Resume of a suspended machine through the public API of a real `hangar up --driver crun`:
 * BENCH_RESUMES cycles (default 100) of POST .../suspend (untimed), then POST .../start (which
 * resumes a suspended machine: the cgroup freezer thaws it, no new process) → first HTTP 200 on
 * the private IP. Reference in the same run: `crun resume` of the same frozen container (spawned
 * directly, bypassing Hangar) → first HTTP 200, then `crun pause` again.
 * Target (issue: runtime): p50 ≤ 10 ms. Writes bench/results/machine-resume.json.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/machine-resume.js
 * @module
 */
import { spawn } from 'node:child_process';
import { crunUnavailable } from '../src/agent/drivers/crun/testing.js';
import { firstOk, sleep, startCrunHangar, stats, writeResult } from './lib/crun-hangar.js';

const RESUMES = Number(process.env.BENCH_RESUMES ?? 100);

async function main(): Promise<void> {
  const unavailable = crunUnavailable();
  if (unavailable) throw new Error(`cannot run the benchmark here: ${unavailable}`);
  const h = await startCrunHangar('resume', { bridge: 'hgbr0', ipv4Cidr: '10.184.0.0/16', ipv6Net: 0xb54, netnsPrefix: 'hbr-', nftTable: 'hangar_hgbr0' });
  const api: number[] = [];
  const bare: number[] = [];
  const crun = (args: string[]) => new Promise<number>((resolve) => spawn('crun', ['--root', h.runtimeRoot, ...args], { stdio: 'ignore' }).on('close', (c) => resolve(c ?? 1)));
  try {
    const m = await h.api.call<{ id: string; private_ip: string }>('POST', '/v1/apps/bench/machines', { config: { image: h.image, restart: { policy: 'no' } } });
    const base = `/v1/apps/bench/machines/${m.id}`;
    await firstOk(m.private_ip, 8080, 30_000);
    for (let i = 0; i < RESUMES + 3; i++) {
      await h.api.call('POST', `${base}/suspend`);
      await h.api.call('GET', `${base}/wait?state=suspended&timeout=10`);
      const began = performance.now();
      await h.api.call('POST', `${base}/start`);
      await firstOk(m.private_ip);
      if (i >= 3) api.push(performance.now() - began);
    }
    // Reference: the runtime alone on the same container (Hangar believes it is running).
    for (let i = 0; i < RESUMES + 3; i++) {
      if ((await crun(['pause', m.id])) !== 0) throw new Error('crun pause failed');
      await sleep(1);
      const began = performance.now();
      if ((await crun(['resume', m.id])) !== 0) throw new Error('crun resume failed');
      await firstOk(m.private_ip);
      if (i >= 3) bare.push(performance.now() - began);
    }
  } finally {
    await h.close();
  }
  const a = stats(api);
  const b = stats(bare);
  await writeResult('machine-resume', {
    benchmark: 'machine-resume',
    date: new Date().toISOString(),
    host: { node: process.version },
    what: 'suspended machine: POST .../start (resume through the public API of `hangar up --driver crun`) → first HTTP 200 on the private IP; reference: `crun resume` of the same container → first HTTP 200',
    api_resume_to_http_200_ms: a,
    bare_crun_resume_to_http_200_ms: b,
    ratio_p50_vs_bare: Math.round((a.p50 / b.p50) * 100) / 100,
    target: { p50_ms: 10 },
    met: a.p50 <= 10,
  });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
