/**
 * The proxy with a data-plane thread beside the main thread (data-plane.ts): both serve the plain
 * listener; limits, starts and metrics hold across them; a thread that dies comes back. Machines
 * are loopback backends fed through `manualRoutes` (their address is 127.0.0.1 and the backend's
 * port: a function seam cannot cross threads); starts go to a fake-driver cluster's real API.
 * Clients run in a child process where the test needs both proxy loops free to accept.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RouteMachine } from '../../src/api-types/watch.js';
import { createProxy } from '../../src/proxy/create-proxy.js';
import { MachineState } from '../../src/proxy/machine-state.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';
import { get, httpService, startBackend, until, type Backend } from './helpers.js';

/** A route for a machine whose address is a loopback backend. */
function route(id: string, app: string, port: number, state = 'started', service: Record<string, unknown> = {}): RouteMachine {
  return {
    id, app_name: app, org_slug: 'personal', region: 'lcl', state, private_ip: '127.0.0.1', version: '1', cordoned: false,
    services: [httpService({ internal_port: port, ...service })] as RouteMachine['services'],
    check_configs: {}, checks: [], metadata: {}, host_status: 'ok', updated_at: '',
  };
}

/**
 * Sends `n` concurrent GETs for `host` from a child process, each on its own connection; answers
 * the statuses and when the last answer came (epoch ms).
 */
function clientProcess(url: string, host: string, n: number, doneFile = ''): Promise<{ statuses: number[]; lastAt: number }> {
  const code = `
    const http = require('node:http');
    const one = () => new Promise((resolve) => {
      const req = http.get(process.argv[1], { headers: { host: process.argv[2] }, agent: false, timeout: 20000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
    });
    Promise.all(Array.from({ length: Number(process.argv[3]) }, one)).then((statuses) => {
      const out = JSON.stringify({ statuses, lastAt: Date.now() });
      if (process.argv[4]) require('node:fs').writeFileSync(process.argv[4], out);
      process.stdout.write(out);
    });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code, url, host, String(n), doneFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(out) as { statuses: number[]; lastAt: number });
      } catch {
        reject(new Error(`client process printed ${JSON.stringify(out)}`));
      }
    });
  });
}

/** An HTTP server answering `body` in a child process (it answers while this thread is busy); answers its port. */
async function backendProcess(body: string): Promise<{ port: number; close(): void }> {
  const code = `
    const server = require('node:http').createServer((req, res) => res.end(process.argv[1]));
    server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));`;
  const child = spawn(process.execPath, ['-e', code, body], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (c) => reject(new Error(`backend process exited with ${c}`)));
  });
  return { port, close: () => void child.kill() };
}

const served = (metrics: string, app: string) => Number(new RegExp(`hangar_proxy_requests_total\\{app="${app}",code="2xx"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);

describe('proxy with a data-plane thread', { timeout: 90_000 }, () => {
  let cluster: TestCluster;
  let proxy: ReturnType<typeof createProxy>;
  let url = '';
  let metricsUrl = '';
  const backends: Backend[] = [];
  const closers: (() => void)[] = [];

  before(async () => {
    cluster = await startCluster({ hosts: ['lcl'], contract: false });
    proxy = createProxy({
      apiUrl: cluster.apiUrl, token: cluster.adminToken, region: 'lcl', manualRoutes: true, autostopIntervalMs: 0, threads: 2,
      listen: { host: '127.0.0.1', port: 0 }, metricsListen: { host: '127.0.0.1', port: 0 },
    });
    const running = await proxy.start();
    url = running.url;
    metricsUrl = running.metricsUrl!;
    assert.equal(proxy.servingThreads(), 2);
  });
  after(async () => {
    await proxy?.close();
    await cluster?.close();
    for (const b of backends) await b.close();
    for (const close of closers) close();
  });

  test('the data-plane thread serves while the main thread is busy; /metrics sums both threads', async () => {
    const hello = await backendProcess('hello');
    closers.push(hello.close);
    proxy.apply({ type: 'upsert', seq: 1, machine: route('m-blocked', 'blocked', hello.port) });
    const mainBefore = proxy.metrics.requests.get({ app: 'blocked', code: '2xx' });
    const doneFile = join(mkdtempSync(join(tmpdir(), 'hangar-threads-')), 'done');
    const client = clientProcess(`${url}/`, 'blocked.localhost', 20, doneFile);
    // Keep this (main) thread from running its loop (bounded) until the client has all its answers:
    // only the other thread can serve; client and backend are processes of their own.
    const blockedUntil = Date.now() + 20_000;
    while (!existsSync(doneFile) && Date.now() < blockedUntil) {
      // busy
    }
    const servedWhileBlocked = existsSync(doneFile);
    rmSync(dirname(doneFile), { recursive: true, force: true });
    const { statuses, lastAt } = await client;
    assert.deepEqual(statuses, Array(20).fill(200));
    assert.ok(servedWhileBlocked && lastAt < blockedUntil, `answers came ${lastAt - blockedUntil} ms after the main thread was free again`);
    assert.equal(proxy.metrics.requests.get({ app: 'blocked', code: '2xx' }) - mainBefore, 0, 'the main thread served none of them');
    const metrics = await (await fetch(metricsUrl)).text();
    assert.equal(served(metrics, 'blocked'), 20);
  });

  test('a hard limit holds across threads: a machine never has more requests in flight than it allows', async (t) => {
    let inFlight = 0;
    let most = 0;
    const slow = await startBackend((_req, res) => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => {
        inFlight--;
        res.end('slow');
      }, 40);
    });
    backends.push(slow);
    proxy.apply({ type: 'upsert', seq: 2, machine: route('m-limited', 'limited', slow.port, 'started', { concurrency: { type: 'requests', soft_limit: 2, hard_limit: 2 } }) });
    const { statuses } = await clientProcess(`${url}/`, 'limited.localhost', 24);
    assert.deepEqual(statuses, Array(24).fill(200), 'over the limit, requests queue and are served');
    assert.ok(most <= 2, `the machine had ${most} requests in flight at once (hard limit 2)`);
    assert.equal(most, 2);
    assert.equal(proxy.pool.loadOf('m-limited'), 0, 'every thread released its leases');
    // Which loop accepted which connection is the kernel's choice: said, not asserted.
    t.diagnostic(`main thread served ${proxy.metrics.requests.get({ app: 'limited', code: '2xx' })} of 24`);
  });

  test('cold requests on both threads share one start, made by the main thread through the API', async () => {
    const backend = await startBackend((_req, res) => res.end('woke'));
    backends.push(backend);
    await cluster.client.apps.create({ name: 'cold', org_slug: 'personal' });
    const m = await cluster.client.machines.create('cold', { config: { image: 'registry.example.test/hello:1.0', services: [httpService()] } as never, region: 'lcl' } as never);
    await cluster.client.machines.stop('cold', m.id);
    await until('stopped', async () => (await cluster.client.machines.get('cold', m.id)).state === 'stopped' || undefined);
    proxy.apply({ type: 'upsert', seq: 3, machine: route(m.id, 'cold', backend.port, 'stopped', { autostop: 'stop', autostart: true }) });
    const { statuses } = await clientProcess(`${url}/`, 'cold.localhost', 12);
    assert.deepEqual(statuses, Array(12).fill(200));
    assert.equal((await cluster.client.machines.get('cold', m.id)).state, 'started');
    assert.equal(proxy.metrics.autostarts.get({ app: 'cold', from: 'stopped' }), 1, 'one start for all threads');
  });

  test('a data-plane thread that dies is started again with its loads cleared; the proxy keeps serving', async () => {
    const hello = await startBackend((_req, res) => res.end('still here'));
    backends.push(hello);
    proxy.apply({ type: 'upsert', seq: 4, machine: route('m-crash', 'crash', hello.port) });
    // A lease the thread will never release: it dies holding it.
    const slot = proxy.pool.slotOf('m-crash')!;
    assert.ok(new MachineState(proxy.pool.state.layout, 1).enter(slot));
    assert.equal(proxy.pool.loadOf('m-crash'), 1);
    await proxy.dataPlane()!.terminate(1);
    assert.equal(proxy.servingThreads(), 1);
    assert.equal((await get(`${url}/`, 'crash.localhost')).status, 200, 'the main thread serves meanwhile');
    await until('thread 1 serving again', () => proxy.servingThreads() === 2 || undefined, 10_000);
    assert.equal(proxy.pool.state.load(slot), 0);
    const { statuses } = await clientProcess(`${url}/`, 'crash.localhost', 10);
    assert.deepEqual(statuses, Array(10).fill(200));
  });
});

describe('proxy with threads started on load', { timeout: 60_000 }, () => {
  test('an idle proxy runs one loop; a busy main loop starts the data-plane thread, which then serves', async () => {
    const proxy = createProxy({
      apiUrl: 'http://127.0.0.1:9', token: 'unused', region: 'lcl', manualRoutes: true, autostopIntervalMs: 0, threads: 2, threadsOnLoad: true,
      listen: { host: '127.0.0.1', port: 0 },
    });
    const hello = await backendProcess('on load');
    try {
      const { url } = await proxy.start();
      proxy.apply({ type: 'snapshot', seq: 1, machines: [route('m-load', 'load', hello.port)] });
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(proxy.servingThreads(), 1, 'idle: no data-plane thread');
      // Busy 90 % of each second (bounded: 6 s at most) until the watcher starts the thread.
      const deadline = Date.now() + 6_000;
      while (proxy.servingThreads() === 1 && Date.now() < deadline) {
        const until = Date.now() + 90;
        while (Date.now() < until) {
          // busy
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await until('the data-plane thread serving', () => proxy.servingThreads() === 2 || undefined, 10_000);
      const { statuses } = await clientProcess(`${url}/`, 'load.localhost', 10);
      assert.deepEqual(statuses, Array(10).fill(200));
    } finally {
      await proxy.close();
      hello.close();
    }
  });
});
