/**
 * Builds one agent ("flyd") from its parts: the SQLite state in `dataDir`, the machine manager, the
 * event streams and the HTTP server. `start()` recovers every machine *before* it listens, so no
 * request ever sees a half-finished operation from a previous run; `close()` ends event streams,
 * stops listening, lets running operations finish (bounded) and closes the driver and database.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AgentInfo } from '../api-types/agent.js';
import { HangarError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { CheckManager, type CheckOptions } from './checks/check-manager.js';
import type { Driver } from './drivers/driver.js';
import { EventHub } from './machines/event-hub.js';
import { ImageGc } from './machines/image-gc.js';
import { MachineManager } from './machines/machine-manager.js';
import { recoverMachines, type RecoveryReport } from './machines/recovery.js';
import type { Backoff } from './machines/restart-policy.js';
import { createAgentHttpServer, listenUrl } from './server/agent-server.js';
import { EventStreams } from './server/event-stream.js';
import { cleanUploads } from './server/image-routes.js';
import { AgentDb } from './store/agent-db.js';

export interface AgentOptions {
  dataDir: string;
  region: string;
  /** Stable id of this host; default: generated once and kept in the data dir. */
  hostId?: string;
  driver: Driver;
  /** Bearer token the API server must send. */
  token: string;
  logger: Logger;
  listen: { host: string; port: number };
  /** Heartbeat interval of event streams; default 15 s. */
  heartbeatMs?: number;
  /** Restart-policy backoff; default 100 ms doubling to 5 s. */
  restartBackoff?: Backoff;
  /** Whether `close()` also closes the driver (default true: the agent owns it). */
  closeDriver?: boolean;
  /** Destroyed machines are remembered this long, so a repeated destroy still answers; default 1 day. */
  tombstoneMs?: number;
  /** Periodic image GC (docs/images.md): interval (default 1 h; 0 = off) and grace of imported names (default 1 h). */
  imageGc?: { intervalMs?: number; graceMs?: number };
  /** Largest image archive `POST /agent/v1/images/import` takes; default 10 GiB. */
  maxImageBytes?: number;
  /** Health checks (docs/checks.md); tests point probes at loopback with `resolveAddress`. */
  checks?: CheckOptions;
}

export interface Agent {
  start(): Promise<{ url: string }>;
  close(): Promise<void>;
  /** What start-up recovery did (after `start()`). */
  readonly recovery: RecoveryReport | undefined;
  /** For tests and the composition root; not part of the RPC. */
  readonly manager: MachineManager;
  readonly hostId: string;
  /** Image GC (periodic, and `run()` for an explicit pass). */
  readonly imageGc: ImageGc;
  /** Health-check runners of the started machines. */
  readonly checks: CheckManager;
}

export function createAgent(options: AgentOptions): Agent {
  if (!options.token) throw new HangarError('invalid_argument', 'the agent needs a token; pass --token-file or let it create one in the data dir');
  const logger = options.logger.child({ component: 'agent' });
  const db = new AgentDb(options.dataDir);
  let hostId = options.hostId ?? db.getMeta('host_id');
  if (!hostId) {
    hostId = `host-${randomBytes(6).toString('hex')}`;
    db.setMeta('host_id', hostId);
  }
  const hub = new EventHub();
  const manager = new MachineManager({
    db, hub, logger, driver: options.driver,
    ...(options.restartBackoff ? { restartBackoff: options.restartBackoff } : {}),
  });
  const streams = new EventStreams({ db, hub, heartbeatMs: options.heartbeatMs ?? 15_000 });
  const checks = new CheckManager({ db, hub, logger: logger.child({ component: 'checks' }), ...options.checks });
  const imageGc = new ImageGc({ db, driver: options.driver, logger, ...options.imageGc });
  const info = (): AgentInfo => ({
    host_id: hostId,
    region: options.region,
    driver: options.driver.name,
    capabilities: options.driver.capabilities,
    seq: db.lastSeq(),
  });
  let server: Server | undefined;
  let recovery: RecoveryReport | undefined;
  let state: 'new' | 'starting' | 'started' | 'closed' = 'new';

  return {
    get recovery() {
      return recovery;
    },
    manager,
    hostId,
    imageGc,
    checks,
    async start() {
      if (state !== 'new') throw new Error(`agent.start() called twice (state ${state})`);
      state = 'starting';
      db.pruneDestroyed(Date.now() - (options.tombstoneMs ?? 86_400_000));
      recovery = await recoverMachines(manager);
      checks.start();
      await cleanUploads(options.dataDir);
      const images = { gc: imageGc, dataDir: options.dataDir, ...(options.maxImageBytes ? { maxBytes: options.maxImageBytes } : {}) };
      server = createAgentHttpServer({ manager, streams, token: options.token, logger, info, images });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(options.listen.port, options.listen.host, () => {
          server!.off('error', reject);
          resolve();
        });
      });
      state = 'started';
      imageGc.start();
      const url = listenUrl(server);
      logger.info('agent listening', { url, host_id: hostId, region: options.region, driver: options.driver.name, machines: recovery.machines });
      return { url };
    },
    async close() {
      if (state === 'closed') return;
      state = 'closed';
      streams.closeAll();
      checks.close();
      const closing = server && new Promise<void>((resolve) => server!.close(() => resolve()));
      server?.closeIdleConnections();
      await manager.close();
      await imageGc.stop();
      server?.closeAllConnections();
      await closing;
      if (options.closeDriver !== false) await options.driver.close();
      db.close();
    },
  };
}
