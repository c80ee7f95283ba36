/**
 * Byte-exactness of the forwarding path: the proxy reads every machine connection into one shared
 * buffer and copies what outlives a read, so interleaved responses, heads split across reads,
 * large content-length bodies, chunked bodies and a slow client (backpressure) must all arrive
 * intact. Bodies are pseudo-random per request so any cross-talk between connections shows.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'node:http';
import { httpService, startBackend, startRig, until, type Backend, type ProxyRig } from './helpers.js';

const IMAGE = 'registry.example.test/hello:1.0';

/** Deterministic bytes for a seed (xorshift), so the client can check what it got. */
function bytesFor(seed: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function fetchBytes(port: number, path: string, slow = false): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: 'bytes.localhost' }, timeout: 20_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      if (slow) {
        // A reader that stalls: socket buffers fill, the proxy's writes queue, and it must own
        // what it queued while other connections keep reading into its shared buffer.
        res.pause();
        setTimeout(() => res.resume(), 400);
      }
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('proxy data path is byte-exact', { timeout: 90_000 }, () => {
  let rig: ProxyRig;
  let backend: Backend;

  before(async () => {
    rig = await startRig();
    backend = await startBackend((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const seed = Number(u.searchParams.get('seed'));
      const size = Number(u.searchParams.get('size'));
      const body = bytesFor(seed, size);
      res.setHeader('x-sha', sha(body));
      if (u.pathname === '/chunked') {
        // Many small chunks, written over several ticks.
        let at = 0;
        const step = () => {
          if (at >= body.length) return res.end();
          const n = Math.min(body.length - at, 1 + (at % 3000));
          res.write(body.subarray(at, at + n));
          at += n;
          setImmediate(step);
        };
        return step();
      }
      res.setHeader('content-length', size);
      if (u.pathname === '/split') {
        // The head in two pieces, the body after a pause.
        res.socket!.setNoDelay(true);
        res.flushHeaders();
        setTimeout(() => res.end(body), 15);
        return;
      }
      res.end(body);
    });
    await rig.cluster.client.apps.create({ name: 'bytes', org_slug: 'personal' });
    const m = await rig.cluster.client.machines.create('bytes', { config: { image: IMAGE, services: [httpService()] } as never, region: 'lcl' } as never);
    rig.addresses.set(m.id, backend.port);
    await until(`machine ${m.id} in the route table`, () => rig.proxy.pool.table.get(m.id)?.state === 'started');
  });
  after(async () => {
    await rig?.close();
    await backend?.close();
  });

  test('interleaved responses of all framings and sizes arrive intact', async () => {
    const cases: { path: string; size: number; slow?: boolean }[] = [];
    for (let i = 0; i < 8; i++) {
      cases.push({ path: '/length', size: [12, 900, 16 * 1024, 16 * 1024 + 1, 70_000, 1_000_000][i % 6]! });
      cases.push({ path: '/chunked', size: 20_000 + i * 3_333 });
      cases.push({ path: '/split', size: 5_000 + i });
    }
    cases.push({ path: '/length', size: 12_000_000, slow: true }, { path: '/length', size: 9_000_000, slow: true }, { path: '/chunked', size: 3_000_000, slow: true });
    const results = await Promise.all(
      cases.map(async (c, seed) => {
        const r = await fetchBytes(rig.port, `${c.path}?seed=${seed + 1}&size=${c.size}`, c.slow);
        return { c, seed: seed + 1, ...r };
      }),
    );
    for (const r of results) {
      assert.equal(r.status, 200, `${r.c.path} size ${r.c.size}`);
      assert.equal(r.body.length, r.c.size, `${r.c.path} size ${r.c.size}: length`);
      assert.ok(r.body.equals(bytesFor(r.seed, r.c.size)), `${r.c.path} size ${r.c.size}${r.c.slow ? ' (slow reader)' : ''}: bytes differ`);
    }
  });

  test('keep-alive pipelining on one client connection keeps order and bytes', async () => {
    const sizes = [10, 40_000, 3, 17_000];
    const wire = sizes.map((s, i) => `GET /length?seed=${100 + i}&size=${s} HTTP/1.1\r\nHost: bytes.localhost\r\n\r\n`).join('');
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: rig.port });
      const parts: Buffer[] = [];
      const want = sizes.reduce((a, b) => a + b, 0);
      s.on('data', (d: Buffer) => {
        parts.push(d);
        const all = Buffer.concat(parts);
        // Done when every body byte has arrived (heads are small, bodies dominate).
        if (all.length >= want + sizes.length * 120) {
          s.destroy();
          resolve(all);
        }
      });
      s.on('error', reject);
      setTimeout(() => {
        s.destroy();
        resolve(Buffer.concat(parts));
      }, 10_000);
      s.write(wire);
    });
    let at = 0;
    sizes.forEach((size, i) => {
      const headEnd = got.indexOf('\r\n\r\n', at);
      assert.ok(headEnd > 0, `response ${i}: head`);
      assert.match(got.toString('latin1', at, headEnd), /^HTTP\/1\.1 200 /);
      const body = got.subarray(headEnd + 4, headEnd + 4 + size);
      assert.ok(body.equals(bytesFor(100 + i, size)), `response ${i}: bytes`);
      at = headEnd + 4 + size;
    });
  });
});
