/**
 * Shared pieces of the real-machine benchmarks (machine-start, -create, -resume, -density,
 * -cycles): a real `hangar up --driver crun` in its own process (API server; the agent is its child
 * process) on a host network of the bench's own (HANGAR_AGENT_NETWORK: bridge, subnets, netns
 * prefix, nft tables that nothing else uses), a local `docker-registry` holding a busybox-httpd
 * image, a keep-alive client for the public Machines API, HTTP probes of machine private IPs, and
 * the host metrics the leak/density benches record (RSS/PSS/fds per process, mounts, netns,
 * cgroup dirs). `close()` destroys every machine, stops `hangar up`, then removes whatever a
 * failed run left: containers, mounts under the bench dir, the bench network, the registry.
 * Traffic only ever goes to the bench's own loopback ports and the addresses of its machines.
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostNetwork } from '../../src/agent/network/host-network.js';
import { silentLogger } from '../../src/core/logger.js';
import { buildBusyboxImage } from '../../src/testkit/images.js';
import { repoRoot } from '../../src/testkit/paths.js';
import { SERVER_V8_FLAGS, serverProcessEnv } from '../../src/up/up.js';
import { freeLoopbackPort, startRegistry, type TestRegistry } from '../../src/testkit/registry.js';
import { childrenOf, cmdline } from '../../src/testkit/processes.js';

export interface BenchNetwork {
  bridge: string;
  ipv4Cidr: string;
  ipv6Net: number;
  netnsPrefix: string;
  nftTable: string;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A sleep that does not keep the process alive (for bounding races). */
export const bound = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export { stats } from './stats.js';

/** One GET / to a machine's app on port 8080 (a fresh connection each time, as a client would). */
export function httpStatus(host: string, port = 8080): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls every 0.5 ms until the app answers 200; throws after `limitMs`. */
export async function firstOk(host: string, port = 8080, limitMs = 5000): Promise<void> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    try {
      if ((await httpStatus(host, port)) === 200) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`no HTTP 200 from ${host}:${port} within ${limitMs} ms`);
    await sleep(0.5);
  }
}

export interface Api {
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

/** A keep-alive JSON client for the public API (one connection pool, like a real API client). */
export function apiClient(url: string, token: string, maxSockets = 32): Api {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const u = new URL(url);
  return {
    call<T>(method: string, path: string, body?: unknown): Promise<T> {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      return new Promise<T>((resolve, reject) => {
        const req = request({
          host: u.hostname, port: u.port, path, method, agent,
          headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
        }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 500)}`));
            else resolve((text ? JSON.parse(text) : undefined) as T);
          });
        });
        req.on('error', reject);
        req.end(payload);
      });
    },
  };
}

export interface CrunHangar {
  dir: string;
  url: string;
  token: string;
  api: Api;
  /** The busybox-httpd image in the bench registry (`127.0.0.1:PORT/bench:1`). */
  image: string;
  network: BenchNetwork;
  upPid: number;
  /** The agent process (child of `hangar up`). */
  agentPid(): number | undefined;
  /** The `hangar proxy` child (only with `withProxy`). */
  proxyPid(): number | undefined;
  /** The agent's OCI runtime root (to list its containers). */
  runtimeRoot: string;
  close(): Promise<void>;
}

/** Starts registry + `hangar up --driver crun`; creates app `app`. */
/** `withProxy`: run the edge proxy too (on a free loopback port), as `hangar up` does by default. */
export async function startCrunHangar(name: string, network: BenchNetwork, app = 'bench', options: { withProxy?: boolean } = {}): Promise<CrunHangar> {
  const dir = mkdtempSync(join(tmpdir(), `hangar-bench-${name}-`));
  let registry: TestRegistry | undefined;
  let up: ChildProcess | undefined;
  const dataDir = join(dir, 'data');
  const runtimeRoot = join(dataDir, 'agent', 'runtime');
  const cleanup = async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      const exited = await Promise.race([new Promise((r) => up!.once('exit', () => r(true))), bound(30_000).then(() => false)]);
      if (!exited) up.kill('SIGKILL');
    }
    // Whatever a failed run left: containers (and their shims), mounts, the bench network.
    if (existsSync(runtimeRoot)) {
      const ids = spawnSync('crun', ['--root', runtimeRoot, 'list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      for (const id of ids) {
        spawnSync('crun', ['--root', runtimeRoot, 'kill', id, 'KILL']);
        spawnSync('crun', ['--root', runtimeRoot, 'delete', '--force', id]);
      }
    }
    spawnSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    await new HostNetwork({ logger: silentLogger, stateDir: join(dir, 'net-cleanup'), ...network, dnsPort: 0 }).destroyHostLevel().catch(() => {});
    await registry?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    registry = await startRegistry();
    const layout = join(dir, 'layout');
    buildBusyboxImage({ dir: layout, tag: '1', cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], files: { 'www/index.html': 'hello from the bench\n' } });
    await registry.push(layout, 'bench:1');
    const apiPort = await freeLoopbackPort();
    const agentPort = await freeLoopbackPort();
    const env: NodeJS.ProcessEnv = { ...serverProcessEnv(process.env), HANGAR_CONFIG_DIR: join(dir, 'cli'), HANGAR_AGENT_NETWORK: JSON.stringify(network) };
    delete env.HANGAR_API_URL;
    delete env.HANGAR_API_TOKEN;
    // The V8 flags and malloc settings `bin/hangar` gives the server processes (`hangar up` passes them on to the agent).
    const proxyFlags = options.withProxy ? ['--proxy-listen', `127.0.0.1:${await freeLoopbackPort()}`] : ['--no-proxy'];
    up = spawn(process.execPath, [...SERVER_V8_FLAGS, join(repoRoot(), 'dist/src/main.js'), 'up', '--driver', 'crun', ...proxyFlags, '--data-dir', dataDir,
      '--api-listen', `127.0.0.1:${apiPort}`, '--agent-listen', `127.0.0.1:${agentPort}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    up.stderr!.on('data', (d) => (output = (output + d).slice(-20_000)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hangar up did not come up in 60 s:\n${output}`)), 60_000);
      up!.stdout!.on('data', (d) => {
        output += d;
        if (output.includes('hangar: up.')) {
          clearTimeout(timer);
          resolve();
        }
      });
      up!.once('exit', (code) => reject(new Error(`hangar up exited early (${code}):\n${output}`)));
    });
    const url = `http://127.0.0.1:${apiPort}`;
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const api = apiClient(url, token);
    await api.call('POST', '/v1/apps', { app_name: app, org_slug: 'personal' });
    const upPid = up.pid!;
    return {
      dir, url, token, api, image: `${registry.host}/bench:1`, network, upPid, runtimeRoot,
      agentPid: () => childrenOf(upPid).find((p) => cmdline(p).includes(' agent ')),
      proxyPid: () => childrenOf(upPid).find((p) => cmdline(p).includes(' proxy ')),
      close: async () => {
        // Destroy every machine through the API first (bounded), then the fallbacks above.
        try {
          const list = await Promise.race([api.call<{ id: string }[]>('GET', `/v1/apps/${app}/machines`), bound(30_000).then(() => [])]);
          for (let i = 0; i < list.length; i += 16) {
            await Promise.race([
              Promise.allSettled(list.slice(i, i + 16).map((m) => api.call('DELETE', `/v1/apps/${app}/machines/${m.id}?force=true`))),
              bound(60_000),
            ]);
          }
        } catch {
          // the fallbacks clean up
        }
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---- host metrics ------------------------------------------------------------------------------

/** RSS and PSS (kB) and the number of open fds of one process. */
export function procMem(pid: number): { rss_kb: number; pss_kb: number; fds: number } {
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  let rss = 0;
  let pss = 0;
  let fds = 0;
  try {
    rss = field(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
    pss = field(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    // gone
  }
  return { rss_kb: rss, pss_kb: pss, fds };
}

/** Per-machine processes under the agent: the shims (`sh`) and their `crun run` children. */
/**
 * The agent's per-machine processes: shims (children of the driver's shim spawner, a busybox `sh`
 * the agent starts once, or of the agent itself when it spawned them without one) and their
 * `crun run`; plus the spawners themselves.
 */
export function shimProcesses(agentPid: number): { shims: number[]; runtimes: number[]; spawners: number[] } {
  const children = childrenOf(agentPid);
  const spawners = children.filter((p) => cmdline(p).includes('hangar-shim-spawner'));
  const shims = [...children.filter((p) => cmdline(p).includes('hangar-shim:')), ...spawners.flatMap((p) => childrenOf(p))];
  return { shims, runtimes: shims.flatMap((p) => childrenOf(p)), spawners };
}

export function sumMem(pids: number[]): { count: number; rss_kb: number; pss_kb: number } {
  let rss = 0;
  let pss = 0;
  for (const p of pids) {
    const m = procMem(p);
    rss += m.rss_kb;
    pss += m.pss_kb;
  }
  return { count: pids.length, rss_kb: rss, pss_kb: pss };
}

/** Host-level counts that leak when lifecycle cleanup is wrong. */
export function hostCounts(h: Pick<CrunHangar, 'dir' | 'network'>, ids: Set<string>): { mounts_total: number; mounts_bench: number; netns_bench: number; cgroup_dirs_bench: number } {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean);
  let netns = 0;
  try {
    netns = readdirSync('/var/run/netns').filter((n) => n.startsWith(h.network.netnsPrefix)).length;
  } catch {
    // none
  }
  let cgroups = 0;
  for (const controller of safeReaddir('/sys/fs/cgroup')) {
    const base = join('/sys/fs/cgroup', controller, 'hangar');
    cgroups += safeReaddir(base).filter((e) => ids.has(e)).length;
  }
  // cgroup dirs: the bench's machines' under /sys/fs/cgroup/<controller>/hangar (other agents on
  // this host use the same parent).
  return { mounts_total: mounts.length, mounts_bench: mounts.filter((l) => l.includes(h.dir)).length, netns_bench: netns, cgroup_dirs_bench: cgroups };
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

export async function writeResult(name: string, result: unknown): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const dir = join(repoRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
