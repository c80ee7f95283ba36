/**
 * Helpers for proxy tests: loopback backends, raw HTTP/1.1 requests to the proxy, and a proxy on a
 * fake-driver cluster whose machines are dialled at loopback backends (the `resolveAddress` seam:
 * fake machines have no network).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { RouteMachine } from '../../src/api-types/watch.js';
import { createProxy, type ProxyOptions } from '../../src/proxy/create-proxy.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';

export interface Backend {
  port: number;
  server: Server;
  hits: number;
  close(): Promise<void>;
}

export async function startBackend(handler: (req: IncomingMessage, res: ServerResponse, b: Backend) => void): Promise<Backend> {
  const b = { hits: 0 } as Backend;
  const server = createServer((req, res) => {
    b.hits++;
    handler(req, res, b);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.server = server;
  b.port = (server.address() as AddressInfo).port;
  b.close = () => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return b;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function get(url: string, host: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { host, ...headers }, timeout: 10_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes and collects what comes back until the server closes or `ms` pass. */
export function raw(port: number, bytes: string | Buffer, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let out = '';
    const t = setTimeout(() => s.destroy(), ms);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('error', () => undefined);
    s.write(bytes);
  });
}

export interface ProxyRig {
  cluster: TestCluster;
  proxy: ReturnType<typeof createProxy>;
  url: string;
  port: number;
  /** Machine id → loopback port its "private address" maps to. */
  addresses: Map<string, number>;
  close(): Promise<void>;
}

export async function startRig(options: Partial<ProxyOptions> & { hosts?: string[] } = {}): Promise<ProxyRig> {
  const cluster = await startCluster({ hosts: options.hosts ?? ['lcl'], contract: false });
  const addresses = new Map<string, number>();
  const proxy = createProxy({
    apiUrl: cluster.apiUrl,
    token: cluster.adminToken,
    listen: { host: '127.0.0.1', port: 0 },
    region: 'lcl',
    autostopIntervalMs: 0,
    resolveAddress: (m: RouteMachine, internalPort: number) => ({ host: '127.0.0.1', port: addresses.get(m.id) ?? internalPort }),
    ...options,
  });
  const running = await proxy.start();
  return {
    cluster, proxy, url: running.url, port: running.httpPort, addresses,
    async close() {
      await proxy.close();
      await cluster.close();
    },
  };
}

export { until } from '../../src/testkit/waiting.js';

export const httpService = (extra: Record<string, unknown> = {}) => ({
  protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }], ...extra,
});
