/**
 * Density: BENCH_STOPPED (default 1,000) stopped machines plus BENCH_RUNNING (default 250) running
 * (a Linux bridge takes at most 1,023 ports; above the driver's port budget, 900, the least
 * recently used stopped machines give up their veth and netns and get them back on start)
 * idle busybox-httpd machines on one `hangar up --driver crun`, created through the public API by 8
 * concurrent clients (a stopped machine is created, started, then stopped: the state a real app's
 * idle machines are in). Records RSS and PSS of each Hangar process: the API server (`hangar up`),
 * the agent, the edge proxy (following the route stream of all 1,250 machines), the shim spawner, and the per-machine processes (the shim `sh` and its `crun run`, summed); checks that
 * every running machine answers HTTP; and measures starts of stopped machines at this density
 * (public API → HTTP 200, 20 samples each of the oldest stopped machines, which gave up their
 * network, and of the newest, which kept it), plus the kernel's neighbour-table counters
 * (`/proc/net/stat/{arp,ndisc}_cache`: entries, table_fulls) before and after. Target (issue: runtime): Hangar processes' RSS ≤ 300 MB
 * together. Writes bench/results/machine-density.json. Everything is destroyed at the end.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/machine-density.js
 * @module
 */
import { readFileSync, readdirSync } from 'node:fs';
import { crunUnavailable } from '../src/agent/drivers/crun/testing.js';
import { firstOk, procMem, shimProcesses, sleep, startCrunHangar, stats, sumMem, writeResult } from './lib/crun-hangar.js';

const STOPPED = Number(process.env.BENCH_STOPPED ?? 1000);
const RUNNING = Number(process.env.BENCH_RUNNING ?? 250);
const CONCURRENCY = 8;

interface Created { id: string; private_ip: string }

async function main(): Promise<void> {
  const unavailable = crunUnavailable();
  if (unavailable) throw new Error(`cannot run the benchmark here: ${unavailable}`);
  const h = await startCrunHangar('density', { bridge: 'hgbd0', ipv4Cidr: '10.185.0.0/16', ipv6Net: 0xb55, netnsPrefix: 'hbd-', nftTable: 'hangar_hgbd0' }, 'bench', { withProxy: true });
  const create = () => h.api.call<Created>('POST', '/v1/apps/bench/machines', { config: { image: h.image, restart: { policy: 'no' } } });
  const base = (id: string) => `/v1/apps/bench/machines/${id}`;
  let result: Record<string, unknown> = {};
  const began = performance.now();
  try {
    const neighBefore = neighbourStats();
    const idle = { api_server: procMem(h.upPid), agent: procMem(h.agentPid()!), proxy: procMem(h.proxyPid()!) };
    const stopped: Created[] = [];
    let n = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (n < STOPPED) {
        n++;
        const m = await create();
        await h.api.call('POST', `${base(m.id)}/stop`, { signal: 'SIGKILL', timeout: '1s' });
        stopped.push(m);
      }
    }));
    const stoppedS = (performance.now() - began) / 1000;
    const running: Created[] = [];
    n = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (n < RUNNING) {
        n++;
        running.push(await create());
      }
    }));
    let answering = 0;
    for (const m of running) {
      await firstOk(m.private_ip, 8080, 10_000);
      answering++;
    }
    await sleep(2000); // settle: idle machines, no requests in flight
    const agentPid = h.agentPid()!;
    const { shims, runtimes, spawners } = shimProcesses(agentPid);
    const api = procMem(h.upPid);
    const agent = procMem(agentPid);
    const proxy = procMem(h.proxyPid()!);
    const shimMem = sumMem(shims);
    const runtimeMem = sumMem(runtimes);
    const spawnerMem = sumMem(spawners);
    // Starts of stopped machines at this density (each stopped again afterwards, untimed): the
    // oldest gave up their netns + veth (re-attached on start), the newest kept them.
    const attachedBefore = countBridgePorts(h.network.bridge);
    const timeStarts = async (machines: Created[]) => {
      const starts: number[] = [];
      for (const m of machines) {
        const t = performance.now();
        await h.api.call('POST', `${base(m.id)}/start`);
        await firstOk(m.private_ip);
        starts.push(performance.now() - t);
        await h.api.call('POST', `${base(m.id)}/stop`, { signal: 'SIGKILL', timeout: '1s' });
      }
      return starts;
    };
    const parkedStarts = await timeStarts(stopped.slice(0, 20));
    const attachedStarts = await timeStarts(stopped.slice(-20));
    const starts = [...parkedStarts, ...attachedStarts];
    const neighAfter = neighbourStats();
    const mb = (kb: number) => Math.round(kb / 102.4) / 10;
    // The edge proxy (a child of `hangar up` like the agent) and the shim spawner (one busybox sh
    // per agent) are Hangar processes like the two servers.
    const hangarCoreRss = api.rss_kb + agent.rss_kb + proxy.rss_kb + spawnerMem.rss_kb;
    result = {
      machines: { stopped: stopped.length, running: running.length, running_answering_http: answering },
      setup_seconds: { stopped: Math.round(stoppedS), total: Math.round((performance.now() - began) / 1000) },
      idle_before_any_machine_mb: { api_server_rss: mb(idle.api_server.rss_kb), agent_rss: mb(idle.agent.rss_kb), proxy_rss: mb(idle.proxy.rss_kb) },
      api_server: { rss_mb: mb(api.rss_kb), pss_mb: mb(api.pss_kb), fds: api.fds },
      agent: { rss_mb: mb(agent.rss_kb), pss_mb: mb(agent.pss_kb), fds: agent.fds },
      proxy: { rss_mb: mb(proxy.rss_kb), pss_mb: mb(proxy.pss_kb), fds: proxy.fds },
      shim_spawner: { count: spawnerMem.count, rss_mb_sum: mb(spawnerMem.rss_kb), pss_mb_sum: mb(spawnerMem.pss_kb) },
      shims_sh: { count: shimMem.count, rss_mb_sum: mb(shimMem.rss_kb), pss_mb_sum: mb(shimMem.pss_kb) },
      crun_run_per_machine: { count: runtimeMem.count, rss_mb_sum: mb(runtimeMem.rss_kb), pss_mb_sum: mb(runtimeMem.pss_kb) },
      totals_mb: {
        api_agent_proxy_spawner_rss: mb(hangarCoreRss),
        all_hangar_rss_sum: mb(hangarCoreRss + shimMem.rss_kb + runtimeMem.rss_kb),
        all_hangar_pss_sum: mb(api.pss_kb + agent.pss_kb + proxy.pss_kb + spawnerMem.pss_kb + shimMem.pss_kb + runtimeMem.pss_kb),
      },
      bridge_ports_in_use: attachedBefore,
      start_of_stopped_at_density_ms: stats(starts),
      start_of_stopped_that_gave_up_its_network_ms: stats(parkedStarts),
      start_of_stopped_that_kept_its_network_ms: stats(attachedStarts),
      neighbour_tables: { before: neighBefore, after: neighAfter },
      note: 'RSS sums double-count shared pages (libc, the crun binary); PSS divides them between the processes sharing them, so the PSS sum is the memory these processes really cost',
    };
  } finally {
    await h.close();
  }
  const totals = result.totals_mb as { api_plus_agent_rss: number; all_hangar_rss_sum: number; all_hangar_pss_sum: number } | undefined;
  await writeResult('machine-density', {
    benchmark: 'machine-density',
    date: new Date().toISOString(),
    host: { node: process.version },
    what: `${STOPPED} stopped + ${RUNNING} running idle busybox-httpd machines on one \`hangar up --driver crun\`; memory of each Hangar process`,
    ...result,
    target: { hangar_rss_mb: 300 },
    met: {
      api_plus_agent: (totals?.api_plus_agent_rss ?? Infinity) <= 300,
      including_per_machine_processes_rss: (totals?.all_hangar_rss_sum ?? Infinity) <= 300,
      including_per_machine_processes_pss: (totals?.all_hangar_pss_sum ?? Infinity) <= 300,
    },
  });
}

/** Entries, forced GC runs and table_fulls of the kernel's ARP and NDP tables (summed over CPUs' rows), and their gc_thresh3. */
function neighbourStats() {
  const read = (family: 'arp' | 'ndisc', sysctl: string) => {
    const lines = readFileSync(`/proc/net/stat/${family}_cache`, 'utf8').trim().split('\n');
    const head = lines[0]!.trim().split(/\s+/);
    const col = (name: string) => lines.slice(1).map((l) => parseInt(l.trim().split(/\s+/)[head.indexOf(name)]!, 16));
    return {
      entries: col('entries')[0], forced_gc_runs: col('forced_gc_runs').reduce((a, b) => a + b, 0),
      table_fulls: col('table_fulls').reduce((a, b) => a + b, 0),
      gc_thresh3: Number(readFileSync(`/proc/sys/net/${sysctl}/neigh/default/gc_thresh3`, 'utf8')),
    };
  };
  return { ipv4: read('arp', 'ipv4'), ipv6: read('ndisc', 'ipv6') };
}

function countBridgePorts(bridge: string): number {
  try {
    return readdirSync(`/sys/class/net/${bridge}/brif`).length;
  } catch {
    return -1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
