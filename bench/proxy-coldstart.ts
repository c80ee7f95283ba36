/**
 * Cold requests through the proxy to a real crun machine (busybox httpd): request → first byte when
 * the app's only machine is stopped (p50 target ≤ 60 ms) and when it is suspended (≤ 15 ms); then
 * autostop to zero and wake, N times in a row, counting failed requests (target 0 of 100).
 * Writes bench/results/proxy-coldstart.json. Needs root and crun (`hangar host setup`).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/proxy-coldstart.js [cycles]
 * @module
 */
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProxy } from '../src/proxy/create-proxy.js';
import { stats } from './lib/stats.js';
import type { Logger } from '../src/core/logger.js';
import { crunClusterUnavailable, startCrunCluster } from '../src/testkit/crun-cluster.js';

const cycles = Number(process.argv[2] ?? 100);

function firstByte(url: string, host: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, agent: false, timeout: 30_000 }, (res) => {
      const ms = performance.now() - t0;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms }));
    });
    req.on('error', reject);
    req.end();
  });
}


async function until(probe: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const why = crunClusterUnavailable();
if (why) throw new Error(`cannot run: ${why}`);
const c = await startCrunCluster({ tag: 'pb' });
// The proxy's autostart log line splits each start: API call (server → agent → crun) vs waiting
// for the app's port. Collected per phase to show whose time the cold request spends.
const starts: { api_ms: number; port_wait_ms: number; connect_attempts: number }[] = [];
const logger: Logger = {
  info: (msg, f) => {
    if (msg === 'autostart: machine answers' && f) starts.push(f as never);
  },
  warn: () => undefined,
  error: () => undefined,
  child: () => logger,
};
const proxy = createProxy({ apiUrl: c.cluster.apiUrl, token: c.cluster.adminToken, listen: { host: '127.0.0.1', port: 0 }, autostopIntervalMs: 0, logger });
const phase = (from: number) => {
  const part = starts.slice(from);
  return part.length === 0 ? undefined : {
    api_ms: stats(part.map((x) => x.api_ms)),
    port_wait_ms: stats(part.map((x) => x.port_wait_ms)),
    connect_attempts: stats(part.map((x) => x.connect_attempts)),
  };
};
try {
  const { url } = await proxy.start();
  const client = c.cluster.client;
  await client.apps.create({ name: 'cold', org_slug: 'personal' });
  const services = [{ protocol: 'tcp', internal_port: 8080, autostop: 'stop', autostart: true, ports: [{ port: 80, handlers: ['http'] }] }];
  const m = await client.machines.create('cold', { config: { image: c.images.httpd, services } as never, region: 'lcl' } as never);
  const host = 'cold.localhost';
  await until(async () => (await firstByte(`${url}/`, host).catch(() => ({ status: 0 }))).status === 200, 10_000);

  const startsBefore = starts.length;
  const fromStopped: number[] = [];
  const fromSuspended: number[] = [];
  let failed = 0;
  for (let i = 0; i < cycles; i++) {
    await client.machines.stop('cold', m.id);
    await until(() => proxy.pool.stateOf(proxy.pool.table.get(m.id)!) === 'stopped', 5000);
    const r = await firstByte(`${url}/`, host);
    if (r.status === 200) fromStopped.push(r.ms);
    else failed++;
  }
  const stoppedStarts = phase(startsBefore);
  const suspendedFrom = starts.length;
  for (let i = 0; i < cycles; i++) {
    await client.machines.suspend('cold', m.id);
    await until(() => proxy.pool.stateOf(proxy.pool.table.get(m.id)!) === 'suspended', 5000);
    const r = await firstByte(`${url}/`, host);
    if (r.status === 200) fromSuspended.push(r.ms);
    else failed++;
  }
  const suspendedStarts = phase(suspendedFrom);
  // autostop to zero, then wake: the controller's pass is driven directly (as its interval would)
  (proxy.autostop as unknown as { options: { minIdleMs: number } }).options.minIdleMs = 0;
  let wakeFailures = 0;
  const wake: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const done = await proxy.autostop.pass();
    if (!done.some((a) => a.id === m.id)) throw new Error(`cycle ${i}: autostop did not stop the idle machine`);
    const r = await firstByte(`${url}/`, host).catch(() => ({ status: 0, ms: 0 }));
    if (r.status === 200) wake.push(r.ms);
    else wakeFailures++;
  }
  const result = {
    benchmark: 'proxy-coldstart',
    date: new Date().toISOString(),
    host: { node: process.version, runtime: 'crun' },
    what: 'request through the proxy → first response byte, the app\'s only machine stopped (autostart: start via API + wait for port) or suspended (resume)',
    from_stopped_ms: stats(fromStopped),
    from_suspended_ms: stats(fromSuspended),
    proxy_autostart_split: { from_stopped: stoppedStarts, from_suspended: suspendedStarts },
    failed_requests: failed,
    autostop_wake_cycles: { cycles, failed_requests: wakeFailures, wake_ms: stats(wake) },
    targets: { from_stopped_p50_ms: '<= 60', from_suspended_p50_ms: '<= 15', autostop_wake_failures: '0 of 100' },
  };
  writeFileSync(join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'results', 'proxy-coldstart.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await proxy.close();
  await c.close();
}
