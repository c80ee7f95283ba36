/**
 * Leak check: N start/stop cycles (default 10,000; BENCH_CYCLES lowers it, BENCH_MAX_SECONDS bounds
 * the run, default 1,800 s) of one busybox-httpd machine through the public API of a real
 * `hangar up --driver crun`. Every 100th cycle also waits for HTTP 200 on the private IP. Records
 * at the start (after 100 warm-up cycles, or 10%), every 10% and at the end: open fds and RSS/PSS of the API
 * server (`hangar up`) and the agent, the host's mount count (all, and under the bench dir), the
 * bench's network namespaces, and the machine's cgroup dirs under /sys/fs/cgroup/<controller>/hangar
 * (measured while the machine is stopped, so every per-run resource should be gone).
 * Pass: no growth in fds, mounts, netns, cgroup dirs; RSS growth < 10% (start → end).
 * BENCH_NETWORK (JSON BenchNetwork) runs it on another bridge/subnet (two runs side by side);
 * BENCH_RESULT names the result file (default machine-cycles).
 * Writes bench/results/machine-cycles.json.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/machine-cycles.js
 * @module
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crunUnavailable } from '../src/agent/drivers/crun/testing.js';
import { firstOk, hostCounts, procMem, shimProcesses, startCrunHangar, stats, writeResult } from './lib/crun-hangar.js';
import { SERVER_MALLOC_ENV, SERVER_V8_FLAGS, serverProcessEnv } from '../src/up/server-process.js';

const CYCLES = Number(process.env.BENCH_CYCLES ?? 10_000);
const MAX_SECONDS = Number(process.env.BENCH_MAX_SECONDS ?? 1_800);
/**
 * With HANGAR_MEM_PROBE_DIR set and NODE_OPTIONS=--import=<dist/bench/lib/mem-probe.js> (inherited
 * by `hangar up` and its agent), every sample also records each process's memoryUsage() breakdown.
 */
const PROBE_DIR = process.env.HANGAR_MEM_PROBE_DIR;

/** Sizes (kB) of the SQLite files (and their -wal) under the data dir. */
function dbFiles(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string, depth: number) => {
    if (depth > 3) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory() && e.name !== 'runtime' && e.name !== 'images' && e.name !== 'machines') walk(p, depth + 1);
      else if (e.isFile() && /\.(sqlite|db)(-wal)?$/.test(e.name)) out[p.slice(root.length + 1)] = Math.round(statSync(p).size / 1024);
    }
  };
  try {
    walk(root, 0);
  } catch {
    // gone
  }
  return out;
}

async function probe(pid: number | undefined): Promise<Record<string, unknown> | undefined> {
  if (!PROBE_DIR || !pid) return undefined;
  const file = join(PROBE_DIR, `${pid}.jsonl`);
  const before = existsSync(file) ? readFileSync(file, 'utf8').length : 0;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 10));
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (text.length > before && text.endsWith('\n')) return JSON.parse(text.slice(before).trim().split('\n').at(-1)!) as Record<string, unknown>;
  }
  return undefined;
}

async function main(): Promise<void> {
  const unavailable = crunUnavailable();
  if (unavailable) throw new Error(`cannot run the benchmark here: ${unavailable}`);
  const h = await startCrunHangar('cycles', process.env.BENCH_NETWORK ? JSON.parse(process.env.BENCH_NETWORK) : { bridge: 'hgbc0', ipv4Cidr: '10.182.0.0/16', ipv6Net: 0xb52, netnsPrefix: 'hbc-', nftTable: 'hangar_hgbc0' });
  const samples: Record<string, unknown>[] = [];
  const startMs: number[] = [];
  const stopMs: number[] = [];
  let done = 0;
  let stoppedEarly: string | undefined;
  const began = performance.now();
  try {
    const m = await h.api.call<{ id: string; private_ip: string }>('POST', '/v1/apps/bench/machines', { config: { image: h.image, restart: { policy: 'no' } } });
    const ids = new Set([m.id]);
    const base = `/v1/apps/bench/machines/${m.id}`;
    await firstOk(m.private_ip);
    const stop = async () => {
      const t = performance.now();
      await h.api.call('POST', `${base}/stop`, { signal: 'SIGTERM', timeout: '2s' });
      await h.api.call('GET', `${base}/wait?state=stopped&timeout=10`);
      stopMs.push(performance.now() - t);
    };
    await stop();
    const sample = async (label: string) => {
      const agentPid = h.agentPid();
      const api: Record<string, unknown> = procMem(h.upPid);
      const agent: Record<string, unknown> | undefined = agentPid ? procMem(agentPid) : undefined;
      if (PROBE_DIR) {
        api.mem = await probe(h.upPid);
        if (agent) agent.mem = await probe(agentPid);
        api.db_files_kb = dbFiles(join(h.dir, 'data'));
      }
      const shims = agentPid ? shimProcesses(agentPid) : { shims: [], runtimes: [], spawners: [] };
      // A stopped machine gets a fresh overlay mounted in the background (the crun driver's warm
      // set, a few ms after the stop): count mounts once that has settled, so every sample sees
      // the same steady state (one warm mount) and growth still means a leak.
      await new Promise((r) => setTimeout(r, 200));
      const s = { label, cycles: done, seconds: Math.round((performance.now() - began) / 100) / 10, api_server: api, agent, shim_processes: shims.shims.length + shims.runtimes.length + shims.spawners.length, ...hostCounts(h, ids) };
      samples.push(s);
      process.stderr.write(`${JSON.stringify(s)}\n`);
    };
    // The "start" sample comes after a warm-up (V8 heap sizing, SQLite page cache, first-run allocations).
  const warmup = Math.min(100, Math.floor(CYCLES / 10));
    const every = Math.max(1, Math.floor((CYCLES - warmup) / 10));
    for (let i = 0; i < CYCLES; i++) {
      if ((performance.now() - began) / 1000 > MAX_SECONDS) {
        stoppedEarly = `time bound of ${MAX_SECONDS} s reached after ${done} cycles`;
        break;
      }
      if (i === warmup) await sample('start');
      else if (i > warmup && (i - warmup) % every === 0) await sample(`${Math.round(((i - warmup) / (CYCLES - warmup)) * 100)}%`);
      const t = performance.now();
      await h.api.call('POST', `${base}/start`);
      startMs.push(performance.now() - t);
      if (i % 100 === 0) await firstOk(m.private_ip);
      await stop();
      done++;
    }
    await sample('end');
  } finally {
    await h.close();
  }
  const first = samples.find((s) => s.label === 'start') ?? samples[0]!;
  const middle = samples[Math.floor(samples.length / 2)]!;
  const last = samples.at(-1)!;
  type S = { api_server: { rss_kb: number; fds: number }; agent?: { rss_kb: number; fds: number }; mounts_total: number; mounts_bench: number; netns_bench: number; cgroup_dirs_bench: number };
  const f = first as unknown as S;
  const l = last as unknown as S;
  const growth = (a: number, b: number) => (a > 0 ? Math.round(((b - a) / a) * 1000) / 10 : 0);
  const verdict = {
    api_rss_growth_pct: growth(f.api_server.rss_kb, l.api_server.rss_kb),
    agent_rss_growth_pct: growth(f.agent?.rss_kb ?? 0, l.agent?.rss_kb ?? 0),
    // Middle → end tells a plateau (heap sized up during the first cycles) from a steady leak.
    api_rss_growth_middle_to_end_pct: growth((middle as unknown as S).api_server.rss_kb, l.api_server.rss_kb),
    agent_rss_growth_middle_to_end_pct: growth((middle as unknown as S).agent?.rss_kb ?? 0, l.agent?.rss_kb ?? 0),
    api_fds_delta: l.api_server.fds - f.api_server.fds,
    agent_fds_delta: (l.agent?.fds ?? 0) - (f.agent?.fds ?? 0),
    mounts_bench_delta: l.mounts_bench - f.mounts_bench,
    netns_bench_delta: l.netns_bench - f.netns_bench,
    cgroup_dirs_bench_delta: l.cgroup_dirs_bench - f.cgroup_dirs_bench,
  };
  const leakFree = verdict.api_rss_growth_pct < 10 && verdict.agent_rss_growth_pct < 10 && verdict.api_fds_delta <= 0 && verdict.agent_fds_delta <= 0 &&
    verdict.mounts_bench_delta <= 0 && verdict.netns_bench_delta <= 0 && verdict.cgroup_dirs_bench_delta <= 0;
  await writeResult(process.env.BENCH_RESULT ?? 'machine-cycles', {
    benchmark: 'machine-cycles',
    date: new Date().toISOString(),
    host: { node: process.version },
    // What the server processes ran with (runs before these settings recorded V8 flags in the docs only).
    launch: {
      v8_flags: SERVER_V8_FLAGS,
      malloc_env: Object.fromEntries(Object.keys(SERVER_MALLOC_ENV).map((k) => [k, serverProcessEnv(process.env)[k]])),
    },
    what: 'start/stop cycles of one machine through the public API of `hangar up --driver crun`; resources sampled while the machine is stopped',
    cycles_requested: CYCLES,
    cycles_done: done,
    ...(stoppedEarly ? { stopped_early: stoppedEarly } : {}),
    seconds: Math.round((performance.now() - began) / 1000),
    start_call_ms: stats(startMs),
    stop_call_ms: stats(stopMs),
    at: { start: first, middle, end: last },
    verdict: { ...verdict, leak_free: leakFree },
    target: 'no growth of fds, mounts, netns, cgroup dirs; RSS growth < 10%',
    samples,
  });
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
