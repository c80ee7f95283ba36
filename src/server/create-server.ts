/**
 * Builds the API server: store + services + routes + agent links. `start()` listens (port 0 works
 * for tests), `close()` stops accepting, ends waits and event followers, and closes the store.
 * @module
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/logger.js';
import { dispatch, Router, type RequestContext } from '../http/router.js';
import type { Store } from '../store/store.js';
import { AgentLink } from './agent-link.js';
import { Authenticator, type Caller } from './auth.js';
import { HostRegistry } from './host-registry.js';
import { MachineNotifier } from './machine-notifier.js';
import { registerAppRoutes } from './routes/apps.js';
import { registerImageRoutes } from './routes/images.js';
import { registerLogRoutes } from './routes/logs.js';
import { registerMachineRoutes } from './routes/machines.js';
import { registerPlatformRoutes } from './routes/platform.js';
import { registerWatchRoutes } from './routes/watch.js';
import { AppService } from './services/apps.js';
import { MachineService } from './services/machines.js';

export interface ApiServerOptions {
  /** A migrated store; the server closes it on `close()`. */
  store: Store;
  /** This server's region: the default for new machines and `nearest` in the regions list. */
  region: string;
  agents: { url: string; token: string }[];
  logger: Logger;
  host?: string;
  port?: number;
}

export interface ApiServer {
  start(): Promise<{ url: string }>;
  /** Resolves once every agent has answered and its host is registered. */
  agentsReady(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
  readonly machines: MachineService;
  /** Every route as `METHOD /path`, for the docs check. */
  readonly routes: string[];
}

const PUBLIC_PATHS = new Set(['/v1/platform/regions', '/healthz']);

export function createApiServer(options: ApiServerOptions): ApiServer {
  const { store, logger } = options;
  const hosts = new HostRegistry();
  const notifier = new MachineNotifier();
  const machines = new MachineService({ store, hosts, notifier, defaultRegion: options.region });
  const apps = new AppService(store, machines, notifier);
  const auth = new Authenticator(store);
  const callers = new WeakMap<IncomingMessage, Caller>();
  const caller = (ctx: RequestContext) => callers.get(ctx.req)!;

  const router = new Router();
  router.get('/healthz', () => ({ ok: true }));
  registerPlatformRoutes(router, { store, region: options.region });
  registerAppRoutes(router, { apps, store, caller });
  registerMachineRoutes(router, { apps, machines, store, hosts, caller });
  registerLogRoutes(router, { apps, machines, hosts, caller });
  registerImageRoutes(router, { store, hosts });
  registerWatchRoutes(router, { store, hosts, notifier, caller });

  const closing = new AbortController();
  const agentConnections: Promise<void>[] = [];
  let server: Server | undefined;

  /** Every machine of a host changes `host_status` with it: tell waiters and route watchers. */
  const announceHostStatus = async (hostId: string) => {
    for (const org of await store.listOrgs()) {
      for (const m of await store.listOrgMachines(org.id)) if (m.host_id === hostId) notifier.changed(m.id);
    }
  };

  /** Brings the catalog in line with what an agent has, on every (re)connection. */
  const resync = async (link: AgentLink, hostId: string) => {
    for (const m of await link.list()) {
      if (!(await store.getMachine(m.id))) {
        // Not in the catalog: a create whose answer was lost and rolled back here. Nobody can reach
        // it through the API, so it must not keep running.
        if (m.state !== 'destroyed') {
          logger.warn('destroying a machine the catalog does not know', { host: hostId, machine: m.id });
          await link.destroy(m.id, true).catch(() => undefined);
        }
        continue;
      }
      await machines.applyAgentEvent({ seq: m.seq, machine_id: m.id, state: m.state, version: m.version, private_ip: m.private_ip, ...(m.checks ? { checks: m.checks } : {}) });
    }
  };

  const connectAgent = async (agent: { url: string; token: string }) => {
    const link = new AgentLink({ url: agent.url, token: agent.token, logger });
    let delay = 50;
    for (;;) {
      if (closing.signal.aborted) return;
      try {
        const info = await link.info();
        const host = await store.upsertHost({ id: info.host_id, region: info.region, url: agent.url });
        hosts.add(info.host_id, link);
        link.follow(
          host.last_seq,
          async (event) => {
            await machines.applyAgentEvent(event);
            await store.setHostSeq(info.host_id, event.seq);
          },
          (reachable) => {
            logger.info(reachable ? 'agent connected' : 'agent unreachable', { host: info.host_id, url: agent.url });
            void announceHostStatus(info.host_id);
          },
          () => resync(link, info.host_id),
        );
        await Promise.race([link.firstConnection, new Promise((resolve) => closing.signal.addEventListener('abort', resolve, { once: true }))]);
        logger.info('agent registered', { host: info.host_id, region: info.region, driver: info.driver, url: agent.url });
        return;
      } catch (err) {
        if (closing.signal.aborted) return;
        // The first few misses are normal: `hangar up` starts the agent and the server together.
        if (delay >= 1000) logger.warn('agent not reachable yet; retrying', { url: agent.url, err: String(err instanceof Error ? err.message : err) });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
  };

  return {
    machines,
    routes: router.list(),
    async start() {
      for (const agent of options.agents) agentConnections.push(connectAgent(agent));
      server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
        void dispatch(router, req, res, {
          logger,
          before: async (ctx) => {
            if (PUBLIC_PATHS.has(new URL(ctx.req.url ?? '/', 'http://x').pathname)) return;
            callers.set(ctx.req, await auth.authenticate(ctx.req.headers.authorization));
          },
        });
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(options.port ?? 4280, options.host ?? '127.0.0.1', () => resolve());
      });
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { url: `http://${host}:${address.port}` };
    },
    async agentsReady(timeoutMs = 30_000) {
      await Promise.race([
        Promise.all(agentConnections),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`agents did not answer within ${timeoutMs} ms`)), timeoutMs).unref()),
      ]);
    },
    async close() {
      closing.abort();
      hosts.closeAll();
      if (server) {
        server.closeIdleConnections();
        const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
        setTimeout(() => server?.closeAllConnections(), 2000).unref();
        await closed;
      }
      await store.close();
    },
  };
}
