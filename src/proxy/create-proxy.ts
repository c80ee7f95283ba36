/**
 * Wires the proxy: route watch → pool (route table, loads, autostart) → HTTP / HTTPS / TCP
 * listeners, the autostop controller, and the metrics listener. `start()` binds (port 0 works) and
 * waits for the first route snapshot; `close()` undoes everything.
 * @module
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { RouteEvent, RouteMachine } from '../api-types/watch.js';
import { HangarClient } from '../client/client.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { AcceptBooster } from './accept-handles.js';
import { acceptRaw } from './accept-raw.js';
import { AutostopController } from './autostop.js';
import { DataPlane } from './data-plane.js';
import { HttpProxy, type HttpTimeouts } from './http-proxy.js';
import { MachineState } from './machine-state.js';
import { MAX_PROXY_THREADS } from './threads-flag.js';
import { ProxyMetrics } from './metrics.js';
import { MachinePool, type PoolLimits } from './pool.js';
import { appFromHost } from './route-table.js';
import { TcpProxy } from './tcp-proxy.js';
import { CertStore } from './tls.js';
import { followRoutes } from './watch-follower.js';

export interface Listen {
  host: string;
  port: number;
}

export interface ProxyOptions {
  apiUrl: string;
  token: string;
  /** Plain HTTP listener (`--proxy-listen`). */
  listen: Listen;
  /** HTTPS listener (TLS handler); none when undefined. */
  httpsListen?: Listen;
  /** Prometheus `/metrics` listener; none when undefined. */
  metricsListen?: Listen;
  /** Host for raw TCP service listeners; default the HTTP listener's host. */
  tcpHost?: string;
  /** Apps answer as `<app>.<domain>`; default `localhost`. */
  domain?: string;
  /** This proxy's region; default `lcl`. */
  region?: string;
  /** Regions nearest first after this one (host config); default none. */
  nearRegions?: string[];
  /** Where the CA and per-app certificates live; default a temp directory. */
  certDir?: string;
  logger?: Logger;
  /** Autostop pass interval; default 30 s. 0 disables autostop. */
  autostopIntervalMs?: number;
  /** How long a machine must be idle before autostop may take it; default the interval. */
  autostopIdleMs?: number;
  queueTimeoutMs?: number;
  maxQueuedPerApp?: number;
  startTimeoutMs?: number;
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  upstreamTimeoutMs?: number;
  /**
   * Test seam: the address dialled for a machine. Fake-driver machines have no network, so tests
   * point them at loopback backends they start.
   */
  resolveAddress?: (m: RouteMachine, internalPort: number) => Listen;
  /** Test seam: do not follow the API's route stream; feed events with `apply`. */
  manualRoutes?: boolean;
  /**
   * Extra accept handles per HTTP(S) listener while many connections are open (accept-handles.ts):
   * each is one more connection accepted per event-loop iteration, which a burst of a thousand
   * connections needs. Default 15; 0 spawns no helper process.
   */
  acceptHandles?: number;
  /**
   * Event loops serving the plain HTTP listener: the main thread plus `threads − 1` data-plane
   * threads (data-plane.ts). Default 1. Not with `resolveAddress` (a function stays in its thread).
   */
  threads?: number;
  /**
   * Start the data-plane threads only once the main thread's loop is busy (utilization ≥ 50 % for
   * two seconds in a row), not at start: an idle proxy then costs one isolate (each thread is
   * +16–40 MB RSS), a busy one gets its cores. Threads stay once started. Default false.
   */
  threadsOnLoad?: boolean;
}

/** The main loop's utilization that counts as busy, sampled every LOAD_SAMPLE_MS, BUSY_SAMPLES in a row. */
const BUSY_UTILIZATION = 0.5;
const LOAD_SAMPLE_MS = 1_000;
const BUSY_SAMPLES = 2;

export interface RunningProxy {
  url: string;
  httpsUrl: string | undefined;
  metricsUrl: string | undefined;
  httpPort: number;
  httpsPort: number | undefined;
}

/** Accept queue per listener: a burst of a thousand connections must not overflow it (SYN retries cost 1 s). */
const LISTEN_BACKLOG = 4096;
/**
 * Extra accept handles are added when this many client connections are open (loop iterations get
 * long, one accept per iteration starves a burst) and dropped again below RELAX_BELOW after at
 * least MIN_BOOST_MS (every new connection wakes every handle, which costs at low concurrency).
 */
const BOOST_AT = 128;
const RELAX_BELOW = 32;
const MIN_BOOST_MS = 5_000;

export function createProxy(o: ProxyOptions) {
  const logger = o.logger ?? silentLogger;
  const region = o.region ?? 'lcl';
  const domain = (o.domain ?? 'localhost').toLowerCase();
  const threads = o.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_PROXY_THREADS) throw new Error(`proxy threads: expected an integer 1..${MAX_PROXY_THREADS}, got ${threads}`);
  if (threads > 1 && o.resolveAddress) throw new Error('proxy threads: resolveAddress (a test seam) works with one thread only');
  const stateLayout = MachineState.create(threads);
  const metrics = new ProxyMetrics();
  const client = new HangarClient({ baseUrl: o.apiUrl, token: o.token, timeoutMs: o.startTimeoutMs ?? 20_000 });
  const regionOrder = [region, ...(o.nearRegions ?? [])];
  // Shared with the data-plane threads, which build their pool and HTTP handler from the same.
  const poolLimits: PoolLimits = {
    queueTimeoutMs: o.queueTimeoutMs ?? 5_000, maxQueuedPerApp: o.maxQueuedPerApp ?? 1_000, startTimeoutMs: o.startTimeoutMs ?? 20_000, failedStartBackoffMs: 10_000,
  };
  const httpTimeouts: HttpTimeouts = {
    ...(o.headTimeoutMs ? { headTimeoutMs: o.headTimeoutMs } : {}),
    ...(o.idleTimeoutMs ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
    ...(o.upstreamTimeoutMs ? { upstreamTimeoutMs: o.upstreamTimeoutMs } : {}),
  };
  const pool = new MachinePool({
    client, region, regionOrder, logger, metrics, ...poolLimits,
    ...(o.resolveAddress ? { resolveAddress: o.resolveAddress } : {}),
    state: new MachineState(stateLayout, 0),
  });
  let dataPlane: DataPlane | undefined;
  let loadWatch: NodeJS.Timeout | undefined;
  const certs = new CertStore(o.certDir ?? join(tmpdir(), `hangar-proxy-certs-${process.getuid?.() ?? 0}`));
  let httpsPort: number | undefined;
  const http = new HttpProxy({ pool, domain, region, logger, metrics, httpsPort: () => httpsPort, ...httpTimeouts });
  const tcp = new TcpProxy(pool, o.tcpHost ?? o.listen.host, logger, metrics, certs, domain);
  let tcpVersion = -1;
  const apply = (event: RouteEvent) => {
    metrics.routeEvents.inc({ type: event.type });
    const slots = pool.apply(event);
    dataPlane?.forward(event, slots);
    if (pool.table.version !== tcpVersion) {
      tcpVersion = pool.table.version;
      tcp.reconcile(pool.table.tcpPorts());
    }
  };
  const primaryRegion = (app: string) => {
    for (const m of pool.table.app(app)) {
      const p = m.metadata.PRIMARY_REGION ?? m.metadata.primary_region ?? m.metadata.fly_primary_region;
      if (p) return p;
    }
    return region;
  };
  const intervalMs = o.autostopIntervalMs ?? 30_000;
  const autostop = new AutostopController(
    client,
    {
      snapshot: () => pool.autostopSnapshot(),
      drain: (id) => pool.drain(id),
      drained: (id, r) => pool.drained(id, r),
      stopped: (a) => metrics.autostops.inc({ app: a.app, action: a.action }),
    },
    { intervalMs, minIdleMs: o.autostopIdleMs ?? intervalMs, primaryRegion },
    logger,
  );

  let plain: Server | undefined;
  let secure: TlsServer | undefined;
  let metricsServer: HttpServer | undefined;
  const boosters: AcceptBooster[] = [];
  const extraHandles = o.acceptHandles ?? 15;
  let boostBroken = false;
  const relaxTimer = setInterval(() => {
    if (http.connections() >= RELAX_BELOW) return;
    for (const b of boosters) if (b.boosted && Date.now() - b.boostedAt >= MIN_BOOST_MS) b.relax();
  }, 1_000);
  relaxTimer.unref();
  // Without the extra handles the proxy still serves; only bursts of new connections are accepted slowly.
  const noBoost = (err: Error) => {
    boostBroken = true;
    logger.warn('proxy: no extra accept handles; bursts of new connections will be accepted slowly', { error: err.message });
  };
  /** Called after every accepted client connection: many open → more accept handles. */
  const maybeBoost = () => {
    if (boostBroken || http.connections() < BOOST_AT) return;
    for (const b of boosters) {
      if (b.boosted) continue;
      b.boost().catch(noBoost);
    }
  };
  let follower: ReturnType<typeof followRoutes> | undefined;

  const listen = (server: Server | HttpServer, l: Listen) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: l.port, host: l.host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  // Without the extra handles the proxy still serves; only a burst of new connections is accepted
  // slowly, so a helper that does not start is a warning, not a failed start.
  const moreAcceptHandles = async (server: Server, onConnection: (s: Socket) => void, onHandle?: (h: unknown) => void) => {
    if (extraHandles === 0) return;
    const b = new AcceptBooster(server, { copies: extraHandles, backlog: LISTEN_BACKLOG, onConnection, ...(onHandle ? { onHandle } : {}) });
    try {
      await b.start();
      boosters.push(b);
    } catch (err) {
      noBoost(err as Error);
    }
  };
  /** Every thread's metrics summed, in the text format. */
  const renderMetrics = async (): Promise<string> => {
    if (!dataPlane) return metrics.render();
    const total = new ProxyMetrics();
    total.absorb(metrics.snapshot());
    for (const part of await dataPlane.collectMetrics()) total.absorb(part);
    return total.render();
  };
  const hostFor = (l: Listen) => (l.host.includes(':') ? `[${l.host}]` : l.host === '0.0.0.0' ? '127.0.0.1' : l.host);

  return {
    pool,
    metrics,
    certs,
    autostop,
    http,
    tcp,
    renderMetrics,
    /** The data-plane threads (undefined with one thread). */
    dataPlane: () => dataPlane,
    /** Event loops serving plain HTTP now: the main thread and the data-plane threads that are up. */
    servingThreads: () => 1 + (dataPlane?.serving() ?? 0),
    /** Accept handles per HTTP(S) listener right now (1 unless boosted). */
    acceptHandles: () => boosters.map((b) => b.handles()),
    /** Feeds one route event (the watch stream does this; tests with `manualRoutes` call it). */
    apply,
    async start(): Promise<RunningProxy> {
      if (!o.manualRoutes) {
        follower = followRoutes({ apiUrl: o.apiUrl, token: o.token, logger, onEvent: apply });
      }
      let plainPort: number | undefined;
      plain = createServer({ noDelay: true }, (s) => {
        http.handle(s, 'http', plainPort);
        maybeBoost();
      });
      const httpPort = (plainPort = await listen(plain, o.listen));
      const plainServer = plain;
      // Plain connections arrive as raw handles: the proxy wraps them to read into a shared buffer.
      const onPlainHandle = (h: unknown) => {
        http.adopt(h, plainPort);
        maybeBoost();
      };
      let raw = true;
      try {
        acceptRaw(plain, onPlainHandle);
      } catch (err) {
        // A Node without the listen handle's accept hook: Node-made sockets work, just slower.
        raw = false;
        logger.warn('proxy: plain connections fall back to Node sockets', { error: (err as Error).message });
      }
      await moreAcceptHandles(plain, (s) => plainServer.emit('connection', s), raw ? onPlainHandle : undefined);
      if (o.httpsListen) {
        await certs.ensureCa();
        secure = createTlsServer(
          {
            SNICallback: (name, cb) => {
              // Only names this proxy serves get a certificate (no minting for arbitrary SNI).
              const app = appFromHost(name, domain);
              const host = app ? name : domain;
              void certs.context(host).then((c) => cb(null, c), (e: Error) => cb(e));
            },
            handshakeTimeout: 10_000,
          },
          (s) => {
            http.handle(s, 'https', httpsPort);
            maybeBoost();
          },
        );
        secure.on('tlsClientError', () => undefined);
        httpsPort = await listen(secure as unknown as Server, o.httpsListen);
        // Raw sockets from the copies go through the TLS server's own connection handling.
        const tlsServer = secure;
        await moreAcceptHandles(secure as unknown as Server, (s) => tlsServer.emit('connection', s));
      }
      if (o.metricsListen) {
        metricsServer = createHttpServer((req, res) => {
          if (req.url === '/metrics') {
            void renderMetrics().then((text) => {
              res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
              res.end(text);
            });
          } else {
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('try /metrics\n');
          }
        });
        await listen(metricsServer, o.metricsListen);
      }
      if (threads > 1) {
        dataPlane = new DataPlane(stateLayout, pool, {
          listenFd: (plainServer as unknown as { _handle: { fd: number } })._handle.fd, listenerPort: httpPort, backlog: LISTEN_BACKLOG,
          domain, region, regionOrder, httpsPort, poolLimits, httpTimeouts,
        }, logger);
        const plane = dataPlane;
        // Fewer threads still serve correctly, only slower: a thread that cannot start is a warning.
        const startThreads = async () => {
          for (const error of await plane.start()) logger.warn('proxy: a data-plane thread did not start; serving on fewer threads', { error });
        };
        if (o.threadsOnLoad) loadWatch = watchMainLoop(() => {
          logger.info('proxy: the main loop is busy; starting data-plane threads', { threads: threads - 1 });
          void startThreads();
        });
        else await startThreads();
      }
      if (intervalMs > 0) autostop.start();
      if (follower) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([follower.ready, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
      }
      const metricsPort = metricsServer ? (metricsServer.address() as AddressInfo).port : undefined;
      return {
        url: `http://${hostFor(o.listen)}:${httpPort}`,
        httpsUrl: httpsPort ? `https://${hostFor(o.httpsListen!)}:${httpsPort}` : undefined,
        metricsUrl: metricsPort ? `http://${hostFor(o.metricsListen!)}:${metricsPort}/metrics` : undefined,
        httpPort,
        httpsPort,
      };
    },
    async close(): Promise<void> {
      clearInterval(relaxTimer);
      clearInterval(loadWatch);
      await dataPlane?.close();
      await Promise.all(boosters.map((b) => b.close()));
      follower?.close();
      autostop.stop();
      tcp.close();
      http.close();
      await Promise.all(
        [plain, secure, metricsServer].map((s) => (s ? new Promise<void>((r) => {
          (s as Server).close(() => r());
          (s as unknown as HttpServer).closeAllConnections?.();
        }) : undefined)),
      );
    },
  };
}

export type Proxy = ReturnType<typeof createProxy>;

/** Calls `onBusy` once, when this thread's event loop has been busy BUSY_SAMPLES samples in a row. */
function watchMainLoop(onBusy: () => void): NodeJS.Timeout {
  let last = performance.eventLoopUtilization();
  let busy = 0;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    busy = performance.eventLoopUtilization(now, last).utilization >= BUSY_UTILIZATION ? busy + 1 : 0;
    last = now;
    if (busy < BUSY_SAMPLES) return;
    clearInterval(timer);
    onBusy();
  }, LOAD_SAMPLE_MS);
  timer.unref();
  return timer;
}
