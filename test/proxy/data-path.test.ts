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
      if (u.pathname === '/upload') {
        // Echoes what arrived (length and hash); a slow machine stops reading for a while, so
        // the proxy's writes to it queue while other client connections keep reading.
        const hash = createHash('sha256');
        let length = 0;
        req.on('data', (d: Buffer) => {
          hash.update(d);
          length += d.length;
        });
        if (u.searchParams.get('slow')) {
          req.pause();
          setTimeout(() => req.resume(), 400);
        }
        req.on('end', () => res.end(JSON.stringify({ length, sha: hash.digest('hex') })));
        return;
      }
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

  test('request bodies of every framing arrive intact while other clients keep reading', async () => {
    // Client connections read into one shared buffer too: whatever a queued write to a machine or
    // a replay copy keeps must be its own copy.
    const send = (seed: number, size: number, chunked: boolean, slow: boolean) =>
      new Promise<{ length: number; sha: string }>((resolve, reject) => {
        const body = bytesFor(seed, size);
        const req = request(
          {
            host: '127.0.0.1', port: rig.port, method: 'POST', path: `/upload${slow ? '?slow=1' : ''}`, timeout: 20_000,
            headers: { host: 'bytes.localhost', ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(size) }) },
          },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString()) as { length: number; sha: string }));
          },
        );
        req.on('timeout', () => req.destroy(new Error('client timeout')));
        req.on('error', reject);
        // Written in uneven pieces over several ticks, so reads interleave across connections.
        let at = 0;
        const step = () => {
          if (at >= body.length) return req.end();
          const n = Math.min(body.length - at, 1 + ((at * 7 + seed) % 40_000));
          req.write(body.subarray(at, at + n));
          at += n;
          setImmediate(step);
        };
        step();
      });
    const cases: { size: number; chunked: boolean; slow: boolean }[] = [];
    for (let i = 0; i < 12; i++) cases.push({ size: [1, 700, 65_536, 65_537, 300_000, 12_000_000][i % 6]!, chunked: i % 2 === 1, slow: i % 6 >= 4 });
    const got = await Promise.all(cases.map((c, i) => send(500 + i, c.size, c.chunked, c.slow)));
    got.forEach((g, i) => {
      const c = cases[i]!;
      assert.equal(g.length, c.size, `upload ${i} (${c.size} bytes${c.chunked ? ', chunked' : ''}${c.slow ? ', slow machine' : ''}): length`);
      assert.equal(g.sha, sha(bytesFor(500 + i, c.size)), `upload ${i} (${c.size} bytes${c.chunked ? ', chunked' : ''}${c.slow ? ', slow machine' : ''}): bytes differ`);
    });
  });

  test('a request head split across many small reads is put together intact', async () => {
    const head = `GET /length?seed=77&size=5000 HTTP/1.1\r\nHost: bytes.localhost\r\nX-Pad: ${'p'.repeat(3000)}\r\n\r\n`;
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: rig.port });
      s.setNoDelay(true);
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        parts.push(d);
        const all = Buffer.concat(parts);
        const headEnd = all.indexOf('\r\n\r\n');
        if (headEnd > 0 && all.length >= headEnd + 4 + 5000) {
          s.destroy();
          resolve(all);
        }
      });
      s.on('error', reject);
      setTimeout(() => {
        s.destroy();
        reject(new Error('no whole response in 10 s'));
      }, 10_000);
      // Pieces with pauses between them: each arrives as its own read, reusing the shared buffer.
      let at = 0;
      const step = () => {
        if (at >= head.length) return;
        const n = 1 + (at % 500);
        s.write(head.slice(at, at + n));
        at += n;
        setTimeout(step, 2);
      };
      step();
    });
    const headEnd = got.indexOf('\r\n\r\n');
    assert.match(got.toString('latin1', 0, headEnd), /^HTTP\/1\.1 200 /);
    assert.ok(got.subarray(headEnd + 4, headEnd + 4 + 5000).equals(bytesFor(77, 5000)), 'body bytes');
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
