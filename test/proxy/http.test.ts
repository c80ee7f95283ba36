/**
 * The proxy on a fake-driver cluster: routing by Host, Fly's headers, balancing and queueing,
 * autostart/autostop through the API, fly-replay, WebSockets, bad input. Machines are dialled at
 * loopback backends through the `resolveAddress` seam.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { get, httpService, raw, startBackend, startRig, until, type Backend, type ProxyRig } from './helpers.js';

const IMAGE = 'registry.example.test/hello:1.0';

describe('http proxy', { timeout: 60_000 }, () => {
  let rig: ProxyRig;
  let echo: Backend;
  const backends: Backend[] = [];
  const machine = async (app: string, port: number, services: unknown[] = [httpService()], extra: Record<string, unknown> = {}) => {
    const m = await rig.cluster.client.machines.create(app, { config: { image: IMAGE, services, ...extra } as never, region: 'lcl' } as never);
    rig.addresses.set(m.id, port);
    await until(`machine ${m.id} in the route table`, () => rig.proxy.pool.table.get(m.id)?.state === 'started');
    return m;
  };

  before(async () => {
    rig = await startRig({ upstreamTimeoutMs: 500, headTimeoutMs: 400, queueTimeoutMs: 300 });
    echo = await startBackend((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    });
    backends.push(echo);
    for (const app of ['web', 'other', 'busy', 'cold', 'replay', 'ws']) await rig.cluster.client.apps.create({ name: app, org_slug: 'personal' });
  });
  after(async () => {
    await rig?.close();
    for (const b of backends) await b.close();
  });

  test('routes by Host to the app and adds Fly headers', async () => {
    await machine('web', echo.port);
    const r = await get(`${rig.url}/hello?x=1`, 'web.localhost', { 'x-forwarded-for': '203.0.113.9', 'fly-client-ip': 'spoofed' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/hello?x=1');
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen.headers['fly-client-ip'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-port'], String(rig.port));
    assert.equal(seen.headers['fly-region'], 'lcl');
    assert.match(seen.headers['fly-request-id']!, /-lcl$/);
    assert.equal(seen.headers.via, '1.1 hangar');
    assert.equal(r.headers['fly-request-id'], seen.headers['fly-request-id']);
    // keep-alive: many requests over one agent work
    for (let i = 0; i < 20; i++) assert.equal((await get(`${rig.url}/`, 'web.localhost')).status, 200);
    // Hop-by-hop headers, the ones Connection names and spoofed forwarding headers never reach the
    // machine; other lines arrive as the client wrote them; an HTTP/1.0 request goes on as 1.1.
    const wire = await raw(rig.port, [
      'GET /h HTTP/1.0', 'Host: web.localhost', 'Connection: close, X-Secret', 'connection: X-Other', 'X-Secret: s', 'X-Other: o', 'Keep-Alive: 5',
      'TE: trailers', 'Proxy-Connection: x', 'Fly-Region: spoofed', 'Via: 1.0 edge', 'X-Forwarded-For: 198.51.100.1', 'x-forwarded-for: 198.51.100.2',
      'X-Custom:  v  ', 'Transfer-Encoding-X: kept', '', '',
    ].join('\r\n'));
    assert.match(wire, /^HTTP\/1\.1 200 /);
    const echoed = JSON.parse(wire.slice(wire.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
    for (const h of ['x-secret', 'x-other', 'keep-alive', 'te', 'proxy-connection']) assert.equal(echoed.headers[h], undefined, h);
    assert.equal(echoed.headers['fly-region'], 'lcl');
    assert.equal(echoed.headers.via, '1.0 edge, 1.1 hangar');
    assert.equal(echoed.headers['x-forwarded-for'], '198.51.100.1, 198.51.100.2, 127.0.0.1');
    assert.equal(echoed.headers['x-custom'], 'v');
    assert.equal(echoed.headers['transfer-encoding-x'], 'kept', 'an ordinary end-to-end header');
    assert.match(wire, /\r\nconnection: close\r\n/i, 'a 1.0 client without keep-alive gets connection: close');
  });

  test('unknown host: 404 naming the app; app whose machines are gone: 503', async () => {
    const r = await get(`${rig.url}/`, 'nope.localhost');
    assert.equal(r.status, 404);
    assert.match(r.body, /app "nope" not found/);
    const r2 = await get(`${rig.url}/`, 'example.com');
    assert.equal(r2.status, 404);
    assert.match(r2.body, /<app>\.localhost/);
    const m = await machine('other', echo.port);
    await rig.cluster.client.machines.delete('other', m.id, { force: true });
    await until('machine removed', () => rig.proxy.pool.table.get(m.id) === undefined);
    const r3 = await get(`${rig.url}/`, 'other.localhost');
    assert.equal(r3.status, 503);
    assert.match(r3.body, /app "other" has no machines/);
  });

  test('bad input: malformed, header flood, slowloris, hung backend, dropped client; proxy keeps serving', async () => {
    assert.match(await raw(rig.port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(rig.port, 'GET / HTTP/1.1\r\nHost: web.localhost\r\nBad Header: x\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(await raw(rig.port, 'POST / HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'), /^HTTP\/1\.1 400/);
    const flood = `GET / HTTP/1.1\r\nHost: web.localhost\r\n${Array.from({ length: 200 }, (_, i) => `x-h${i}: v`).join('\r\n')}\r\n\r\n`;
    assert.match(await raw(rig.port, flood), /^HTTP\/1\.1 431/);
    assert.match(await raw(rig.port, `GET / HTTP/1.1\r\nHost: web.localhost\r\nx: ${'a'.repeat(40_000)}`), /^HTTP\/1\.1 431/);
    // slowloris: a head that never finishes gets 408 after the head timeout
    const started = Date.now();
    assert.match(await raw(rig.port, 'GET / HTTP/1.1\r\nHost: web.loc', 3000), /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 2000);
    // hung backend: 504 after the upstream timeout
    const hung = await startBackend(() => undefined);
    backends.push(hung);
    await machine('busy', hung.port);
    const r = await get(`${rig.url}/`, 'busy.localhost');
    assert.equal(r.status, 504);
    assert.match(r.body, /did not answer within 500 ms/);
    // a client that drops mid-request (body promised, never sent)
    const s = connect({ host: '127.0.0.1', port: rig.port });
    s.on('error', () => undefined);
    s.write('POST / HTTP/1.1\r\nHost: web.localhost\r\nContent-Length: 1000\r\n\r\nabc');
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
    // chunked body passes through
    const c = await raw(rig.port, 'POST /c HTTP/1.1\r\nHost: web.localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.match(c, /^HTTP\/1\.1 200/);
    assert.equal((await get(`${rig.url}/`, 'web.localhost')).status, 200);
  });

  test('a refused head counts its own latency, not the time since the proxy started', async () => {
    const sum = () => Number(/hangar_proxy_request_duration_seconds_sum (\S+)/.exec(rig.proxy.metrics.render())![1]);
    // The bug measured from process start: wait only until that is over a second ago.
    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - performance.now())));
    const before = sum();
    assert.match(await raw(rig.port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.ok(sum() - before < 0.5, `latency recorded for a refused head: ${sum() - before} s`);
  });

  test('autostart from stopped: the request waits for the start; autostop takes an idle machine to zero', async () => {
    const m = await machine('cold', echo.port, [httpService({ autostop: 'stop', autostart: true })]);
    await rig.cluster.client.machines.stop('cold', m.id);
    await until('stopped in table', () => rig.proxy.pool.table.get(m.id)?.state === 'stopped');
    const replies = await Promise.all([1, 2, 3].map(() => get(`${rig.url}/`, 'cold.localhost')));
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200]);
    assert.equal((await rig.cluster.client.machines.get('cold', m.id)).state, 'started');
    assert.equal(rig.proxy.metrics.autostarts.get({ app: 'cold', from: 'stopped' }), 1, 'concurrent cold requests share one start');
    // autostop: one pass with no idle window stops it
    (rig.proxy.autostop as unknown as { options: { minIdleMs: number } }).options.minIdleMs = 0;
    const stopped = await rig.proxy.autostop.pass();
    assert.ok(stopped.some((a) => a.id === m.id), JSON.stringify(stopped));
    assert.equal((await rig.cluster.client.machines.get('cold', m.id)).state, 'stopped');
    assert.equal((await get(`${rig.url}/`, 'cold.localhost')).status, 200);
  });

  test('hard limit: requests queue, then 503 with a clear body', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = await startBackend((_req, res) => void gate.then(() => res.end('slow')));
    backends.push(slow);
    await rig.cluster.client.apps.create({ name: 'limited', org_slug: 'personal' });
    await machine('limited', slow.port, [httpService({ concurrency: { type: 'requests', soft_limit: 1, hard_limit: 1 }, autostart: false })]);
    const first = get(`${rig.url}/`, 'limited.localhost');
    await until('first in flight', () => slow.hits === 1);
    const second = await get(`${rig.url}/`, 'limited.localhost');
    assert.equal(second.status, 503);
    assert.match(second.body, /over capacity: all 1 started machine\(s\) are at their hard limit/);
    const third = get(`${rig.url}/`, 'limited.localhost');
    await new Promise((r) => setTimeout(r, 50));
    release();
    assert.equal((await first).status, 200);
    assert.equal((await third).status, 200, 'a queued request is served when capacity frees');
  });

  test('fly-replay sends the request to another machine', async () => {
    const target = await startBackend((req, res) => res.end(`replayed ${req.headers['fly-replay-src'] ? 'with src' : 'without src'} ${req.method} ${req.url}`));
    backends.push(target);
    const b = await machine('replay', target.port, [httpService({ autostart: false })]);
    const replayer = await startBackend((_req, res) => {
      res.setHeader('fly-replay', `instance=${b.id}`);
      res.end('should not be seen');
    });
    backends.push(replayer);
    await rig.cluster.client.machines.cordon('replay', b.id); // new traffic goes to the replayer only
    const a = await machine('replay', replayer.port, [httpService({ autostart: false })]);
    await until('cordon seen', () => rig.proxy.pool.table.get(b.id)?.cordoned);
    const r = await get(`${rig.url}/p`, 'replay.localhost', {}, 'POST', 'body');
    assert.equal(r.status, 503, 'a cordoned machine gets no traffic, even by replay: ' + r.body);
    await rig.cluster.client.machines.uncordon('replay', b.id);
    await until('uncordon seen', () => rig.proxy.pool.table.get(b.id)?.cordoned === false);
    const r2 = await get(`${rig.url}/p`, 'replay.localhost', { 'fly-force-instance-id': a.id }, 'POST', 'body');
    assert.equal(r2.status, 200);
    assert.equal(r2.body, 'replayed with src POST /p');
  });

  test('websocket upgrade becomes a byte pipe', async () => {
    const ws = await startBackend((_req, res) => res.end('no upgrade'));
    ws.server.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
      socket.on('end', () => socket.destroy());
    });
    backends.push(ws);
    await machine('ws', ws.port);
    const out = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: rig.port });
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        if (buf.includes('\r\n\r\n') && !buf.includes('echo:')) s.write('ping');
        if (buf.includes('echo:ping')) {
          s.destroy();
          resolve(buf);
        }
      });
      s.write('GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    assert.match(out, /^HTTP\/1\.1 101/);
    assert.match(out, /echo:ping/);
  });
});
