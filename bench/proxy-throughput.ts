/**
 * Proxy throughput and added latency, one run, same backend for every path: a loopback NGINX
 * serving a 12-byte body (the backend of field-numbers §5.2), reached directly, through Debian's
 * NGINX as a reverse proxy (2 workers, upstream keepalive 64), and through the Hangar proxy (its own
 * process with one event loop (the row comparable to earlier runs), and a second with two
 * (`hangar_proxy_2_threads`: `--threads 2`, `hangar proxy`'s default since 2026-11-23); its route table is fed one machine whose address is the
 * backend — the `manualRoutes` seam, so the data path is measured without containers). wrk, 1 thread, 64
 * keep-alive connections, interleaved rounds (ROUNDS below); then 1,000 concurrent connections through the Hangar proxy.
 * Writes bench/results/proxy-throughput.json. Needs nginx and wrk (`apt-get install -y nginx wrk`).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/proxy-throughput.js
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DURATION = process.env.BENCH_DURATION ?? '8s';
/**
 * The keep-alive paths (direct, nginx, Hangar) run in interleaved rounds, the order rotated per
 * round, so a neighbour's burst on this shared box lands on all three alike; the ratio and the
 * added p99 are medians of the per-round values. (Before 2026-11-22's fourth session: one 8 s run
 * per path, one after the other.)
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_DURATION = process.env.BENCH_ROUND_DURATION ?? '3s';


interface WrkResult { rps: number; p50_ms: number; p99_ms: number; errors: number; non2xx: number; requests: number }

function ms(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function wrk(url: string, host: string, connections: number, duration = DURATION, extraHeaders: string[] = []): WrkResult {
  const headers = [`Host: ${host}`, ...extraHeaders].flatMap((h) => ['-H', h]);
  const out = execFileSync('wrk', ['-t', connections > 100 ? '2' : '1', '-c', String(connections), '-d', duration, '--latency', ...headers, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = err ? Number(err[1]) + Number(err[2]) + Number(err[3]) + Number(err[4]) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  return { rps, p50_ms: p50, p99_ms: p99, errors, non2xx, requests };
}

/** CPU seconds (user + system) used so far by `pid` and its child processes (nginx workers). */
function cpuSeconds(pid: number): number {
  const [user, sys] = cpuSplit(pid);
  return user + sys;
}

/** [user, system] CPU seconds used so far by `pid` and its child processes. */
function cpuSplit(pid: number): [number, number] {
  const one = (p: number): [number, number] => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [Number(f[11]) / 100, Number(f[12]) / 100]; // utime, stime in clock ticks (USER_HZ 100)
    } catch {
      return [0, 0];
    }
  };
  return [pid, ...childrenOf(pid)].map(one).reduce(([u, s], [a, b]) => [u + a, s + b], [0, 0]);
}

/** [idle, total] jiffies of the whole box so far (/proc/stat). */
function boxTicks(): [number, number] {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return [f[3]! + f[4]!, f.reduce((a, b) => a + b, 0)];
}

/** The backend's nginx master pid, for its CPU per request (set by main). */
let backendPid = 0;

/**
 * wrk plus the CPU the proxy spent per request (steal-proof: the box is shared and noisy). Added
 * 2026-11-22 round 2, next to the unchanged fields: the proxy's user/system split, the backend's
 * CPU per request, and how idle the whole box was (near 0 %: the run was CPU-bound on the box).
 */
function measured(pid: number, url: string, host: string, connections: number, duration = DURATION, extraHeaders: string[] = []) {
  const [u0, s0] = cpuSplit(pid);
  const b0 = backendPid ? cpuSeconds(backendPid) : 0;
  const [i0, t0] = boxTicks();
  const r = wrk(url, host, connections, duration, extraHeaders);
  const [u1, s1] = cpuSplit(pid);
  const b1 = backendPid ? cpuSeconds(backendPid) : 0;
  const [i1, t1] = boxTicks();
  const per = (seconds: number) => Number(((seconds * 1e6) / Math.max(1, r.requests)).toFixed(1));
  return {
    ...r,
    proxy_cpu_us_per_request: per(u1 - u0 + (s1 - s0)),
    proxy_user_us_per_request: per(u1 - u0),
    proxy_system_us_per_request: per(s1 - s0),
    backend_cpu_us_per_request: per(b1 - b0),
    box_idle_pct: Number(((100 * (i1 - i0)) / Math.max(1, t1 - t0)).toFixed(1)),
  };
}

const medianTo = (values: number[], digits: number) => Number(median(values).toFixed(digits));

/** One path's rounds: median rate and latencies, errors and requests summed. */
function summary(rounds: WrkResult[]): WrkResult {
  return {
    rps: medianTo(rounds.map((r) => r.rps), 1), p50_ms: medianTo(rounds.map((r) => r.p50_ms), 3), p99_ms: medianTo(rounds.map((r) => r.p99_ms), 3),
    errors: rounds.reduce((n, r) => n + r.errors, 0), non2xx: rounds.reduce((n, r) => n + r.non2xx, 0), requests: rounds.reduce((n, r) => n + r.requests, 0),
  };
}

/** CPU per request over all rounds (weighted by requests), and the box's idleness (median). */
function cpuSummary(rounds: ReturnType<typeof measured>[]) {
  const requests = rounds.reduce((n, r) => n + r.requests, 0);
  const per = (key: 'proxy_cpu_us_per_request' | 'proxy_user_us_per_request' | 'proxy_system_us_per_request' | 'backend_cpu_us_per_request') =>
    Number((rounds.reduce((n, r) => n + r[key] * r.requests, 0) / Math.max(1, requests)).toFixed(1));
  return {
    proxy_cpu_us_per_request: per('proxy_cpu_us_per_request'), proxy_user_us_per_request: per('proxy_user_us_per_request'),
    proxy_system_us_per_request: per('proxy_system_us_per_request'), backend_cpu_us_per_request: per('backend_cpu_us_per_request'),
    box_idle_pct: medianTo(rounds.map((r) => r.box_idle_pct), 1),
  };
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const { connect } = require_net();
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}
import * as net from 'node:net';
import { freeLoopbackPort as freePort } from '../src/testkit/registry.js';
import { childrenOf } from '../src/testkit/processes.js';
import { SERVER_V8_FLAGS, serverProcessEnv } from '../src/up/server-process.js';
import { median } from './lib/stats.js';
import { createLogger } from '../src/core/logger.js';
const require_net = () => net;

/**
 * The same NGINX doing the forwarding work Hangar's proxy does on every request (the headers it
 * adds for the machine and the two it adds to the answer, as http-proxy.ts sets them): the
 * like-for-like reference. Added 2026-11-23; the plain `nginx_proxy` row keeps its definition.
 */
const NGINX_FLY_HEADERS_SERVER = (port: number) => ` server { listen 127.0.0.1:${port}; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;`
  + ' proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Ssl off;'
  + ' proxy_set_header X-Forwarded-Port $server_port; proxy_set_header Fly-Forwarded-Port $server_port; proxy_set_header Fly-Client-IP $remote_addr;'
  + ' proxy_set_header Fly-Region lcl; proxy_set_header Fly-Request-Id $request_id; proxy_set_header Via "1.1 nginx";'
  + ' add_header fly-request-id $request_id always; add_header Via "1.1 nginx" always; } }';

async function serveProxy(backendPort: number, listenPort: number, threads: number): Promise<void> {
  const { createProxy } = await import('../src/proxy/create-proxy.js');
  const proxy = createProxy({
    apiUrl: 'http://127.0.0.1:9', token: 'unused', listen: { host: '127.0.0.1', port: listenPort }, manualRoutes: true, autostopIntervalMs: 0,
    threads,
    // As `hangar proxy` runs: the second loop starts once the first is busy (the warm-up does that).
    threadsOnLoad: true,
    logger: createLogger({ component: 'bench-proxy' }),
  });
  proxy.apply({
    type: 'snapshot', seq: 1, machines: [{
      id: 'bench0000000001', app_name: 'bench', org_slug: 'personal', region: 'lcl', state: 'started', private_ip: '127.0.0.1', version: '1', cordoned: false,
      services: [{ protocol: 'tcp', internal_port: backendPort, ports: [{ port: 80, handlers: ['http'] }], concurrency: { type: 'requests', soft_limit: 5000, hard_limit: 10000 } }],
      check_configs: {}, checks: [], metadata: {}, host_status: 'ok', updated_at: '',
    }],
  });
  await proxy.start();
  process.stdout.write('ready\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serveProxy(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5] ?? 1));
  for (const tool of ['nginx', 'wrk']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: apt-get install -y nginx wrk`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'hangar-bench-proxy-'));
  const children: ChildProcess[] = [];
  try {
    const [backendPort, nginxProxyPort, nginxFlyPort, hangarPort, hangar2Port] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const conf = (name: string, server: string) => {
      const path = join(dir, `${name}.conf`);
      writeFileSync(path, `worker_processes 2;\npid ${dir}/${name}.pid;\nerror_log ${dir}/${name}.err warn;\ndaemon off;\nworker_rlimit_nofile 20000;\nevents { worker_connections 8192; }\nhttp {\n access_log off;\n client_body_temp_path ${dir}/${name}-body;\n proxy_temp_path ${dir}/${name}-proxy;\n fastcgi_temp_path ${dir}/${name}-fcgi;\n uwsgi_temp_path ${dir}/${name}-uwsgi;\n scgi_temp_path ${dir}/${name}-scgi;\n keepalive_requests 100000;\n${server}\n}\n`);
      return path;
    };
    const backendConf = conf('backend', ` server { listen 127.0.0.1:${backendPort}; location / { return 200 "hello world\\n"; } }`);
    const proxyConf = conf('nginxproxy', ` upstream be { server 127.0.0.1:${backendPort}; keepalive 64; }\n server { listen 127.0.0.1:${nginxProxyPort}; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }\n${NGINX_FLY_HEADERS_SERVER(nginxFlyPort)}`);
    for (const c of [backendConf, proxyConf]) children.push(spawn('nginx', ['-c', c, '-p', dir], { stdio: 'ignore' }));
    // The proxy process runs as `hangar up` runs it: the servers' V8 flags and malloc settings.
    const serve = (port: number, threads: number) => {
      const child = spawn(process.execPath, [...SERVER_V8_FLAGS, fileURLToPath(import.meta.url), 'serve', String(backendPort), String(port), String(threads)], {
        stdio: ['ignore', 'pipe', 'inherit'], env: serverProcessEnv(process.env),
      });
      children.push(child);
      return child;
    };
    const hangar = serve(hangarPort, 1);
    const hangar2 = serve(hangar2Port, 2);
    await Promise.all([waitPort(backendPort), waitPort(nginxProxyPort), waitPort(hangarPort), waitPort(hangar2Port)]);
    backendPid = children[0]!.pid!;

    const host = 'bench.localhost';
    wrk(`http://127.0.0.1:${hangarPort}/`, host, 64, '2s'); // warm up
    wrk(`http://127.0.0.1:${hangar2Port}/`, host, 64, '5s'); // long enough to start its second loop (2 busy seconds)
    wrk(`http://127.0.0.1:${nginxProxyPort}/`, host, 64, '2s');
    wrk(`http://127.0.0.1:${nginxFlyPort}/`, host, 64, '2s');
    type Measured = ReturnType<typeof measured>;
    const runs: { direct: WrkResult; nginx: Measured; nginx_fly_headers: Measured; hangar: Measured; hangar_2_threads: Measured }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round: Partial<(typeof runs)[number]> = {};
      const paths = [
        () => (round.direct = wrk(`http://127.0.0.1:${backendPort}/`, host, 64, ROUND_DURATION)),
        () => (round.nginx = measured(children[1]!.pid!, `http://127.0.0.1:${nginxProxyPort}/`, host, 64, ROUND_DURATION)),
        () => (round.nginx_fly_headers = measured(children[1]!.pid!, `http://127.0.0.1:${nginxFlyPort}/`, host, 64, ROUND_DURATION)),
        () => (round.hangar = measured(hangar.pid!, `http://127.0.0.1:${hangarPort}/`, host, 64, ROUND_DURATION)),
        () => (round.hangar_2_threads = measured(hangar2.pid!, `http://127.0.0.1:${hangar2Port}/`, host, 64, ROUND_DURATION)),
      ];
      for (let k = 0; k < paths.length; k++) paths[(k + r) % paths.length]!();
      runs.push(round as (typeof runs)[number]);
    }
    const direct = summary(runs.map((x) => x.direct));
    const nginx = { ...summary(runs.map((x) => x.nginx)), ...cpuSummary(runs.map((x) => x.nginx)) };
    const nginxFly = { ...summary(runs.map((x) => x.nginx_fly_headers)), ...cpuSummary(runs.map((x) => x.nginx_fly_headers)) };
    const hangarRun = { ...summary(runs.map((x) => x.hangar)), ...cpuSummary(runs.map((x) => x.hangar)) };
    const hangar2Run = { ...summary(runs.map((x) => x.hangar_2_threads)), ...cpuSummary(runs.map((x) => x.hangar_2_threads)) };
    const thousand = wrk(`http://127.0.0.1:${hangarPort}/`, host, 1000, '5s');
    const thousand2 = wrk(`http://127.0.0.1:${hangar2Port}/`, host, 1000, '5s');
    // References added 2026-11-22 (the rows above keep their definitions): nginx at 1,000
    // connections, and a new connection per request (accept cost, incl. the extra accept handles).
    const thousandNginx = wrk(`http://127.0.0.1:${nginxProxyPort}/`, host, 1000, '5s');
    const closeNginx = measured(children[1]!.pid!, `http://127.0.0.1:${nginxProxyPort}/`, host, 64, '5s', ['Connection: close']);
    const closeHangar = measured(hangar.pid!, `http://127.0.0.1:${hangarPort}/`, host, 64, '5s', ['Connection: close']);
    const result = {
      benchmark: 'proxy-throughput',
      date: new Date().toISOString(),
      host: { node: process.version, cpus: (await import('node:os')).cpus().length, nginx: spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim() },
      what: `wrk -t1 -c64 keep-alive, ${ROUNDS} interleaved rounds of ${ROUND_DURATION} per path (order rotated per round), same loopback NGINX backend (12-byte body); all processes on this box. Per path: median rps/p50/p99 over rounds, CPU per request over all rounds; ratio and added p99: medians of the per-round values`,
      nginx_workers: 2,
      direct, nginx_proxy: nginx, nginx_proxy_fly_headers: nginxFly, hangar_proxy: hangarRun,
      hangar_proxy_2_threads: {
        ...hangar2Run,
        throughput_ratio_vs_nginx: medianTo(runs.map((x) => x.hangar_2_threads.rps / x.nginx.rps), 3),
        throughput_ratio_vs_nginx_fly_headers: medianTo(runs.map((x) => x.hangar_2_threads.rps / x.nginx_fly_headers.rps), 3),
        added_p99_ms: medianTo(runs.map((x) => x.hangar_2_threads.p99_ms - x.direct.p99_ms), 3),
      },
      throughput_ratio_vs_nginx: medianTo(runs.map((x) => x.hangar.rps / x.nginx.rps), 3),
      throughput_ratio_vs_nginx_fly_headers: medianTo(runs.map((x) => x.hangar.rps / x.nginx_fly_headers.rps), 3),
      added_p99_ms: medianTo(runs.map((x) => x.hangar.p99_ms - x.direct.p99_ms), 3),
      added_p99_ms_nginx: medianTo(runs.map((x) => x.nginx.p99_ms - x.direct.p99_ms), 3),
      added_p99_ms_nginx_fly_headers: medianTo(runs.map((x) => x.nginx_fly_headers.p99_ms - x.direct.p99_ms), 3),
      rounds: runs,
      cpu_per_request_ratio_vs_nginx: Number((hangarRun.proxy_cpu_us_per_request / nginx.proxy_cpu_us_per_request).toFixed(2)),
      cpu_per_request_ratio_vs_nginx_fly_headers: Number((hangarRun.proxy_cpu_us_per_request / nginxFly.proxy_cpu_us_per_request).toFixed(2)),
      connections_1000_2_threads: thousand2,
      connections_1000: thousand,
      connections_1000_nginx: thousandNginx,
      connection_per_request: {
        what: 'wrk -t1 -c64 with "Connection: close": one TCP connection per request, 5 s each',
        nginx_proxy: closeNginx, hangar_proxy: closeHangar,
        throughput_ratio_vs_nginx: Number((closeHangar.rps / closeNginx.rps).toFixed(3)),
      },
      targets: { throughput_ratio: '>= 0.8', added_p99_ms: '<= 2', connections_1000_errors: 0 },
      reference_note: 'throughput_ratio_vs_nginx_fly_headers is the like-for-like reference (NGINX adding the same forwarding headers); throughput_ratio_vs_nginx keeps the earlier definition (NGINX adding only X-Forwarded-For)',
    };
    writeFileSync(join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'results', 'proxy-throughput.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
