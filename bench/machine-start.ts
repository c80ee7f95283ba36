/**
 * Machine start latency on crun, four ways in one run, 100 stop→start cycles each of a
 * busybox-httpd machine, each timed from the start request to the first HTTP 200 from the app,
 * interleaved round by round (one cycle of each per round, so changing load hits all alike):
 *   1. the public API of a real `hangar up --driver crun` (own process; the agent is its child):
 *      POST /v1/apps/{app}/machines/{id}/start → 200 on the machine's private IP (6PN IPv6);
 *   2. the agent's HTTP RPC (POST /agent/v1/machines/{id}/start, agent in this process) → 200 on
 *      the private IPv4;
 *   3. the floor: a bare `crun run -d` of the agent's bundle (an overlay of the same image, same netns, cgroup
 *      limits; the overlay is mounted beforehand, untimed) → 200; twice, interleaved: `crun` as
 *      installed (the reference of every recorded run) and crun from the agent's read-only bind
 *      mount of its binary (`OciRuntime.pin`: no re-exec of itself), the floor the agent now has;
 *   4. the agent's HTTP RPC of a second in-process agent whose driver spawns each shim itself
 *      (`shimSpawner: false`, a fork of the agent per start: the code before the shim spawner), on
 *      a machine of its own, so the spawner's effect is measured inside the same run.
 * Writes bench/results/machine-start.json (or bench/results/NAME.json with a second argument). Needs root, crun, tini-static, busybox-static,
 * docker-registry and skopeo. Targets (issue: runtime): public API p50 ≤ 30 ms, p99 ≤ 80 ms,
 * p50 ≤ 1.5× the bare floor.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/machine-start.js [cycles] [NAME]
 * @module
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { createAgent } from '../src/agent/create-agent.js';
import { CrunDriver } from '../src/agent/drivers/crun/crun-driver.js';
import { realProviders, tempDataDir, crunUnavailable } from '../src/agent/drivers/crun/testing.js';
import { mountMachineRootfs, unmountMachineRootfs } from '../src/agent/images/image-store.js';
import { silentLogger } from '../src/core/logger.js';
import { baseSpec } from '../src/agent/drivers/driver.conformance.js';
import { startCrunHangar, stats } from './lib/crun-hangar.js';

const cycles = Number(process.argv[2] ?? 100);
const outName = process.argv[3] ?? 'machine-start';
if (!/^machine-start[\w.-]*$/.test(outName)) throw new Error(`result name ${JSON.stringify(outName)}: must start with machine-start (letters, digits, . _ -), e.g. machine-start-round4-1`);
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

function get(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function firstOk(host: string, port = 8080, limitMs = 5000): Promise<void> {
  const deadline = performance.now() + limitMs;
  for (;;) {
    try {
      if ((await get(host, port)) === 200) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`no HTTP 200 from ${host}:${port} within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 0.5));
  }
}

/**
 * The public API of `hangar up` (API server → agent RPC → driver): one machine, stopped; each
 * `cycle()` starts it, times the start request → HTTP 200 on the private IP, and stops it again.
 */
async function publicApiMachine(): Promise<{ cycle(): Promise<number>; close(): Promise<void> }> {
  const h = await startCrunHangar('start', { bridge: 'hgbs0', ipv4Cidr: '10.180.0.0/16', ipv6Net: 0xb50, netnsPrefix: 'hbs-', nftTable: 'hangar_hgbs0' });
  try {
    const m = await h.api.call<{ id: string; private_ip: string }>('POST', '/v1/apps/bench/machines', { config: { image: h.image, restart: { policy: 'no' } } });
    await firstOk(m.private_ip);
    const base = `/v1/apps/bench/machines/${m.id}`;
    const stop = async () => {
      await h.api.call('POST', `${base}/stop`, { signal: 'SIGTERM', timeout: '2s' });
      await h.api.call('GET', `${base}/wait?state=stopped&timeout=10`);
    };
    await stop();
    return {
      async cycle() {
        const began = performance.now();
        await h.api.call('POST', `${base}/start`);
        await firstOk(m.private_ip);
        const took = performance.now() - began;
        await stop();
        return took;
      },
      close: () => h.close(),
    };
  } catch (err) {
    await h.close();
    throw err;
  }
}

async function main(): Promise<void> {
  const unavailable = crunUnavailable();
  if (unavailable) throw new Error(`cannot run the benchmark here: ${unavailable}`);
  const api = await publicApiMachine();
  const root = await tempDataDir('hangar-bench-start-');
  const providers = await realProviders(root, { bridge: 'hgbench0', ipv4Cidr: '10.250.0.0/16', ipv6Net: 0xbe, netnsPrefix: 'hb-' });
  const dataDir = join(root, 'agent');
  await mkdir(dataDir, { recursive: true });
  const driver = new CrunDriver({ dataDir, images: providers.images, network: providers.network });
  const token = 'bench-token';
  const agent = createAgent({ dataDir, region: 'lcl', driver, token, logger: silentLogger, listen: { host: '127.0.0.1', port: 0 } });
  const { url } = await agent.start();
  // The same agent code whose driver spawns every shim itself (the start path before the spawner).
  const spawnDataDir = join(root, 'agent-spawn');
  await mkdir(spawnDataDir, { recursive: true });
  const spawnDriver = new CrunDriver({ dataDir: spawnDataDir, images: providers.images, network: providers.network, shimSpawner: false });
  const spawnAgent = createAgent({ dataDir: spawnDataDir, region: 'lcl', driver: spawnDriver, token, logger: silentLogger, listen: { host: '127.0.0.1', port: 0 } });
  const spawnUrl = (await spawnAgent.start()).url;
  const call = async (method: string, path: string, body?: unknown, base = url) => {
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as unknown;
  };
  const spec = baseSpec({ config: { image: 'docker.io/library/busybox:latest', restart: { policy: 'no' } } });
  const apiSamples: number[] = [];
  const agentSamples: number[] = [];
  const bareSamples: number[] = [];
  const barePinnedSamples: number[] = [];
  const agentSpawnSamples: number[] = [];
  const spawnSpec = baseSpec({ config: { image: 'docker.io/library/busybox:latest', restart: { policy: 'no' } } });
  try {
    await call('POST', '/agent/v1/machines', { spec, start: false });
    await call('POST', '/agent/v1/machines', { spec: spawnSpec, start: false }, spawnUrl);
    /** One agent RPC path: start → HTTP 200 on the machine's private IPv4 (timed), then stop. */
    const agentPath = async (id: string, agentDataDir: string, base: string) => {
      const machineIpv4 = (JSON.parse(await readFile(join(agentDataDir, 'machines', id, 'machine.json'), 'utf8')) as { network: { ipv4: string } }).network.ipv4;
      const cycle = async () => {
        const began = performance.now();
        await call('POST', `/agent/v1/machines/${id}/start`, undefined, base);
        await firstOk(machineIpv4);
        const took = performance.now() - began;
        await call('POST', `/agent/v1/machines/${id}/stop`, { signal: 15, timeout_ms: 2000 }, base);
        return took;
      };
      return { ipv4: machineIpv4, cycle };
    };
    const agentSpawnCycle = (await agentPath(spawnSpec.id, spawnDataDir, spawnUrl)).cycle;
    await agentSpawnCycle();
    const { ipv4, cycle: agentCycle } = await agentPath(spec.id, dataDir, url);
    await agentCycle(); // the driver pins its runtime binary at its first start

    // The floor: the same bundle run by crun directly (overlay mounted beforehand, not timed), in
    // two ways: plain `crun` as installed (the reference of every earlier run), and crun run the
    // way the agent runs it since it pins the binary: from a read-only bind mount with
    // _LIBCONTAINER_CLONED_BINARY=1, which skips crun's re-exec of itself.
    // Its own overlay dir beside the machine's (same image lower dir, same bundle otherwise: netns,
    // cgroup limits, mounts): the driver keeps a fresh overlay mounted at the stopped machine's
    // rootfs/ for its next start (the warm set), which the floor must not unmount or reuse.
    const machineDir = join(dataDir, 'bare-floor');
    const bundle = join(machineDir, 'bundle');
    const machineConfig = JSON.parse(await readFile(join(dataDir, 'machines', spec.id, 'bundle', 'config.json'), 'utf8')) as { root: { path: string } };
    machineConfig.root.path = join(machineDir, 'rootfs');
    await mkdir(bundle, { recursive: true });
    await writeFile(join(bundle, 'config.json'), JSON.stringify(machineConfig));
    const bareId = `bare-${spec.id}`;
    const crunRoot = driver.runtime.root;
    const lower = (await providers.images.resolve(spec.config.image)).rootfsDir;
    const pinned = { command: driver.runtime.command, env: driver.runtime.env };
    if (pinned.command === driver.runtime.bin) throw new Error('the driver did not pin its runtime binary; the pinned floor cannot be measured');
    const bareCycle = async (asPinned: boolean) => {
      await mountMachineRootfs(machineDir, lower);
      const began = performance.now();
      const child = asPinned
        ? spawn(pinned.command, ['--root', crunRoot, 'run', '-d', '--bundle', bundle, bareId], { stdio: 'ignore', env: pinned.env })
        : spawn(driver.runtime.bin, ['--root', crunRoot, 'run', '-d', '--bundle', bundle, bareId], { stdio: 'ignore' });
      await firstOk(ipv4);
      const took = performance.now() - began;
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      await driver.runtime.exec(['kill', bareId, 'KILL']);
      for (let j = 0; j < 200; j++) {
        const st = await driver.runtime.state(bareId);
        if (!st || st.status === 'stopped') break;
        await new Promise((r) => setTimeout(r, 2));
      }
      await driver.runtime.exec(['delete', '--force', bareId]);
      await unmountMachineRootfs(machineDir);
      return took;
    };

    // Round-robin, one cycle of each per round, so the load other work puts on the VM at any moment
    // hits all four alike and the ratios compare like with like (earlier runs measured the paths one
    // after the other). 3 warm-up rounds.
    for (let i = 0; i < cycles + 3; i++) {
      const round = [await api.cycle(), await agentCycle(), await bareCycle(false), await bareCycle(true), await agentSpawnCycle()];
      if (i < 3) continue;
      apiSamples.push(round[0]!);
      agentSamples.push(round[1]!);
      bareSamples.push(round[2]!);
      barePinnedSamples.push(round[3]!);
      agentSpawnSamples.push(round[4]!);
    }
  } finally {
    await call('DELETE', `/agent/v1/machines/${spec.id}?force=true`).catch(() => {});
    await call('DELETE', `/agent/v1/machines/${spawnSpec.id}?force=true`, undefined, spawnUrl).catch(() => {});
    await agent.close();
    await spawnAgent.close();
    await providers.cleanup().catch(() => {});
    await rm(root, { recursive: true, force: true });
    await api.close();
  }
  const result = {
    benchmark: 'machine-start',
    date: new Date().toISOString(),
    host: { node: process.version, runtime: driver.runtime.name },
    cycles,
    what: 'start of a stopped machine → first HTTP 200 from busybox httpd on its private IP: through the public API of `hangar up --driver crun` (private 6PN IPv6), through the agent HTTP RPC (private IPv4), and the floor: bare `crun run -d` of the same bundle → first HTTP 200, as installed and from the agent\'s read-only bind mount of crun (no self re-exec), and the agent RPC of a second agent whose driver spawns each shim itself (no shim spawner: the previous start path), interleaved',
    api_start_to_http_200_ms: stats(apiSamples),
    agent_start_to_http_200_ms: stats(agentSamples),
    bare_crun_run_to_http_200_ms: stats(bareSamples),
    bare_pinned_crun_run_to_http_200_ms: stats(barePinnedSamples),
    agent_shim_spawned_by_agent_to_http_200_ms: stats(agentSpawnSamples),
    ratios_p50: {
      api_vs_bare: ratio(stats(apiSamples).p50, stats(bareSamples).p50),
      agent_vs_bare: ratio(stats(agentSamples).p50, stats(bareSamples).p50),
      agent_shim_spawned_by_agent_vs_bare: ratio(stats(agentSpawnSamples).p50, stats(bareSamples).p50),
      api_vs_bare_pinned: ratio(stats(apiSamples).p50, stats(barePinnedSamples).p50),
    },
    ratios_p99: {
      api_vs_bare: ratio(stats(apiSamples).p99, stats(bareSamples).p99),
      api_vs_bare_pinned: ratio(stats(apiSamples).p99, stats(barePinnedSamples).p99),
    },
    targets: { api_p50_ms: 30, api_p99_ms: 80, api_vs_bare_p50: 1.5 },
    // Every sample in the order taken (round by round), for looking at the tail.
    samples_ms: Object.fromEntries(Object.entries({ api: apiSamples, agent: agentSamples, bare: bareSamples, bare_pinned: barePinnedSamples, agent_shim_spawned_by_agent: agentSpawnSamples })
      .map(([k, v]) => [k, v.map((x) => Math.round(x * 100) / 100)])),
  };
  await mkdir(new URL('../../bench/results/', import.meta.url), { recursive: true });
  await writeFile(new URL(`../../bench/results/${outName}.json`, import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
