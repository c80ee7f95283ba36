/**
 * Raw TCP services: a listener per public port that a service declares without the http handler
 * (`services.ports` with no handlers, or only `tls`, which is terminated here). Listeners follow
 * the route table; each connection is balanced (type connections) and piped to a machine.
 * @module
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { RouteMachine } from '../api-types/watch.js';
import type { Logger } from '../core/logger.js';
import type { ProxyMetrics } from './metrics.js';
import type { MachinePool } from './pool.js';
import { tcpService, type ServiceMatch, type TcpPortRoute } from './route-table.js';
import type { CertStore } from './tls.js';

export class TcpProxy {
  private readonly servers = new Map<number, { route: TcpPortRoute; server: Server }>();
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly pool: MachinePool,
    private readonly host: string,
    private readonly logger: Logger,
    private readonly metrics: ProxyMetrics,
    private readonly certs: CertStore | undefined,
    private readonly domain: string,
  ) {}

  /** Opens listeners for ports that appeared, closes those that went away. */
  reconcile(routes: TcpPortRoute[]): void {
    const wanted = new Map(routes.map((r) => [r.port, r]));
    for (const [port, { route, server }] of this.servers) {
      const w = wanted.get(port);
      if (!w || w.app !== route.app || w.tls !== route.tls) {
        server.close();
        this.servers.delete(port);
      }
    }
    for (const route of routes) {
      if (this.servers.has(route.port)) continue;
      // One selector per listener: the pool caches service matches per selector.
      const select = (m: RouteMachine) => tcpService(m, route.port);
      const onConnection = (socket: Socket) => this.handle(route, select, socket);
      const certs = this.certs;
      const server: Server = route.tls && certs
        ? createTlsServer({ SNICallback: (name, cb) => void certs.context(name).then((c) => cb(null, c), (e: Error) => cb(e)) }, onConnection)
        : createServer(onConnection);
      server.on('error', (err) => {
        this.logger.warn('tcp proxy: cannot listen', { port: route.port, app: route.app, error: err.message });
        this.servers.delete(route.port);
      });
      server.listen(route.port, this.host, () => this.logger.info('tcp proxy: listening', { port: route.port, app: route.app, tls: route.tls }));
      this.servers.set(route.port, { route, server });
    }
    void this.domain;
  }

  ports(): number[] {
    return [...this.servers.keys()];
  }

  private handle(route: TcpPortRoute, select: (m: RouteMachine) => ServiceMatch | undefined, socket: Socket): void {
    this.sockets.add(socket);
    this.metrics.tcpConnections.inc({ app: route.app });
    this.metrics.activeConnections.inc({ kind: 'tcp' });
    socket.pause();
    socket.setNoDelay(true);
    let closed = false;
    let release = () => {};
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      this.sockets.delete(socket);
      this.metrics.activeConnections.inc({ kind: 'tcp' }, -1);
      release();
    });
    this.pool.acquire(route.app, select).then(
      (lease) => {
        release = () => lease.release();
        if (closed) return lease.release();
        const up = connect({ host: lease.host, port: lease.port });
        up.setNoDelay(true);
        up.on('error', () => socket.destroy());
        up.on('close', () => socket.destroy());
        socket.on('close', () => up.destroy());
        up.on('connect', () => {
          socket.pipe(up);
          up.pipe(socket);
          socket.resume();
        });
      },
      (err: Error) => {
        this.logger.warn('tcp proxy: connection not served', { port: route.port, app: route.app, error: err.message });
        socket.destroy();
      },
    );
  }

  close(): void {
    for (const { server } of this.servers.values()) server.close();
    this.servers.clear();
    for (const s of this.sockets) s.destroy();
  }
}
