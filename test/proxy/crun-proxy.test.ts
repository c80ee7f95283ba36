/**
 * The proxy in front of real crun machines (busybox httpd on their private IPv6 address): routing,
 * autostart from stopped and from suspended, autostop to zero and wake again, raw TCP, TLS, metrics.
 * Traffic goes to the proxy on loopback and to this test's own machines only.
 */
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createProxy } from '../../src/proxy/create-proxy.js';
import { crunClusterUnavailable, startCrunCluster, type CrunCluster } from '../../src/testkit/crun-cluster.js';
import { get, until } from './helpers.js';
import { freeLoopbackPort as freePort } from '../../src/testkit/registry.js';

const unavailable = crunClusterUnavailable();


// Once with the main thread alone, once with a data-plane thread beside it (requests land on either;
// starts still happen once, in the main thread, and /metrics sums both).
for (const threads of [1, 2]) describe(`proxy on crun machines, ${threads} thread(s)`, { skip: unavailable, timeout: 180_000 }, () => {
  let c: CrunCluster;
  let proxy: ReturnType<typeof createProxy>;
  let url = '';
  let httpsPort = 0;
  let metricsUrl = '';
  let tcpPort = 0;
  const certDir = mkdtempSync(join(tmpdir(), 'hangar-proxy-certs-'));

  before(async () => {
    c = await startCrunCluster({ tag: threads === 1 ? 'px' : 'py' });
    await c.cluster.client.apps.create({ name: 'hello', org_slug: 'personal' });
    proxy = createProxy({
      apiUrl: c.cluster.apiUrl, token: c.cluster.adminToken, region: 'lcl',
      listen: { host: '127.0.0.1', port: 0 }, httpsListen: { host: '127.0.0.1', port: 0 }, metricsListen: { host: '127.0.0.1', port: 0 },
      certDir, autostopIntervalMs: 300, autostopIdleMs: 300, threads,
    });
    const running = await proxy.start();
    assert.equal(proxy.servingThreads(), threads);
    url = running.url;
    httpsPort = running.httpsPort!;
    metricsUrl = running.metricsUrl!;
    tcpPort = await freePort();
  });
  after(async () => {
    await proxy?.close();
    await c?.close();
    rmSync(certDir, { recursive: true, force: true });
  });

  test('autostart from stopped and suspended, autostop to zero, wake again; TLS, raw TCP, metrics', async () => {
    const services = [
      { protocol: 'tcp', internal_port: 8080, autostop: 'stop', autostart: true, min_machines_running: 0,
        ports: [{ port: 80, handlers: ['http'] }, { port: 443, handlers: ['tls', 'http'] }, { port: tcpPort }] },
    ];
    const m = await c.cluster.client.machines.create('hello', { config: { image: c.images.httpd, services } as never, region: 'lcl' } as never);
    // served while started
    const first = await until('first answer', async () => {
      const r = await get(`${url}/`, 'hello.localhost').catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
    assert.equal(first.body, 'hello from hangar v1\n');

    // autostop takes the idle machine to zero
    await until('autostopped', async () => (await c.cluster.client.machines.get('hello', m.id)).state === 'stopped' || undefined, 15_000);
    // the next request wakes it
    const t0 = performance.now();
    const woke = await get(`${url}/`, 'hello.localhost');
    const coldMs = performance.now() - t0;
    assert.equal(woke.status, 200, woke.body);
    assert.equal(woke.body, 'hello from hangar v1\n');
    assert.ok(coldMs < 5_000, `cold start took ${coldMs} ms`);

    // suspended → resumed on demand
    await c.cluster.client.machines.suspend('hello', m.id);
    await until('suspended in table', () => proxy.pool.table.get(m.id)?.state === 'suspended');
    const resumed = await get(`${url}/`, 'hello.localhost');
    assert.equal(resumed.status, 200);
    assert.ok(proxy.metrics.autostarts.get({ app: 'hello', from: 'suspended' }) >= 1);

    // TLS with a certificate for the app's host, signed by the proxy's CA
    const tls = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, path: '/', servername: 'hello.localhost', headers: { host: 'hello.localhost' }, ca: readFileSync(join(certDir, 'ca.crt')) }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(tls, { status: 200, body: 'hello from hangar v1\n' });

    // raw TCP service on its own port
    await until('tcp listener', () => proxy.tcp.ports().includes(tcpPort));
    const tcpReply = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: tcpPort });
      let out = '';
      s.on('data', (d) => (out += d.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
      s.write('GET / HTTP/1.0\r\n\r\n');
    });
    assert.match(tcpReply, /hello from hangar v1/);

    const metrics = await (await fetch(metricsUrl)).text();
    assert.match(metrics, /hangar_proxy_autostarts_total\{app="hello",from="stopped"\} \d+/);
    assert.match(metrics, /hangar_proxy_autostops_total\{action="stop",app="hello"\} \d+/);
    assert.match(metrics, /hangar_proxy_request_duration_seconds_count \d+/);
    assert.match(metrics, /hangar_proxy_queue_depth/);
    // woke + resumed + TLS at least, wherever each was served
    const served = Number(/hangar_proxy_requests_total\{app="hello",code="2xx"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(served >= 3, `requests counted: ${served}`);
  });
});
