import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MachineConfig } from '../../api-types/machine.js';
import { checkSpecs, type CheckSpec } from './check-specs.js';
import { runProbe } from './probes.js';
import { freeLoopbackPort as freePort } from '../../testkit/registry.js';

function spec(check: Record<string, unknown>): CheckSpec {
  return checkSpecs(MachineConfig.parse({ image: 'x', checks: { c: check } }))[0]!;
}

function listen(server: Server | ReturnType<typeof createTcpServer>, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

/** A port nobody listens on (bound, then closed). */

describe('probes: tcp', () => {
  test('passes when the port accepts, fails with the syscall error when refused', async () => {
    const server = createTcpServer((socket) => socket.end());
    const port = await listen(server);
    try {
      assert.deepEqual(await runProbe(spec({ type: 'tcp', port }), '127.0.0.1'), { passing: true, output: `TCP connect to port ${port}: connected` });
    } finally {
      await new Promise((r) => server.close(r));
    }
    const closed = await freePort();
    assert.deepEqual(await runProbe(spec({ type: 'tcp', port: closed }), '127.0.0.1'), { passing: false, output: `TCP connect to port ${closed}: connect ECONNREFUSED` });
  });

  test('works on IPv6 loopback (private IPs are IPv6)', async () => {
    const server = createTcpServer((socket) => socket.end());
    const port = await listen(server, '::1');
    try {
      assert.equal((await runProbe(spec({ type: 'tcp', port }), '::1')).passing, true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a check without a port is critical', async () => {
    assert.deepEqual(await runProbe(spec({ type: 'tcp' }), '127.0.0.1'), { passing: false, output: 'TCP connect to port ?: the check names no port' });
  });
});

describe('probes: http', () => {
  let server: Server;
  let port: number;
  const seen: IncomingMessage[] = [];
  before(async () => {
    server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req);
      if (req.url === '/ok') res.writeHead(200).end('fine');
      else if (req.url === '/redirect') res.writeHead(302, { location: '/ok' }).end();
      else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2000).unref();
      else res.writeHead(503).end('down');
    });
    port = await listen(server);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('2xx passes with "HTTP GET /path: 200 OK"', async () => {
    assert.deepEqual(await runProbe(spec({ type: 'http', port, path: '/ok' }), '127.0.0.1'), { passing: true, output: 'HTTP GET /ok: 200 OK' });
  });

  test('5xx and 3xx fail (redirects are not followed)', async () => {
    assert.deepEqual(await runProbe(spec({ type: 'http', port, path: '/down' }), '127.0.0.1'), { passing: false, output: 'HTTP GET /down: 503 Service Unavailable' });
    assert.deepEqual(await runProbe(spec({ type: 'http', port, path: '/redirect' }), '127.0.0.1'), { passing: false, output: 'HTTP GET /redirect: 302 Found' });
  });

  test('method and headers are sent', async () => {
    seen.length = 0;
    const result = await runProbe(spec({ type: 'http', port, path: '/ok', method: 'HEAD', headers: [{ name: 'X-Forwarded-Proto', values: ['https'] }] }), '127.0.0.1');
    assert.equal(result.output, 'HTTP HEAD /ok: 200 OK');
    assert.equal(seen[0]!.method, 'HEAD');
    assert.equal(seen[0]!.headers['x-forwarded-proto'], 'https');
    assert.equal(seen[0]!.headers['user-agent'], 'hangar-health-check');
  });

  test('the timeout bounds a request', async () => {
    const started = Date.now();
    assert.deepEqual(await runProbe(spec({ type: 'http', port, path: '/slow', timeout: '150ms' }), '127.0.0.1'), { passing: false, output: 'HTTP GET /slow: timed out after 150 ms' });
    assert.ok(Date.now() - started < 1000);
  });

  test('an abort ends a request at once', async () => {
    const controller = new AbortController();
    const pending = runProbe(spec({ type: 'http', port, path: '/slow', timeout: '5s' }), '127.0.0.1', controller.signal);
    setTimeout(() => controller.abort(), 20);
    assert.deepEqual(await pending, { passing: false, output: 'HTTP GET /slow: cancelled' });
  });

  test('connection refused', async () => {
    const closed = await freePort();
    assert.deepEqual(await runProbe(spec({ type: 'http', port: closed, path: '/health' }), '127.0.0.1'), { passing: false, output: 'HTTP GET /health: connect ECONNREFUSED' });
  });
});

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}

describe('probes: https', { skip: openssl ? false : 'openssl is not installed' }, () => {
  let server: ReturnType<typeof createHttpsServer>;
  let port: number;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-checks-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=app.example',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.writeHead(204).end());
    port = await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('tls_skip_verify accepts a self-signed certificate', async () => {
    assert.deepEqual(await runProbe(spec({ type: 'http', port, protocol: 'https', tls_skip_verify: true }), '127.0.0.1'), { passing: true, output: 'HTTP GET /: 204 No Content' });
  });

  test('without tls_skip_verify the certificate is verified', async () => {
    const result = await runProbe(spec({ type: 'http', port, protocol: 'https' }), '127.0.0.1');
    assert.equal(result.passing, false);
    assert.match(result.output, /^HTTP GET \/: .*(self[- ]signed|certificate)/i);
  });
});
