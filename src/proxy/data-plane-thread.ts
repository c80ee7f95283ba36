/**
 * One data-plane thread (worker_threads entry, started by data-plane.ts): the plain HTTP listener's
 * data path on its own event loop and core. It listens on its own descriptor of the main thread's
 * listening socket (the kernel keeps one accept queue; whichever loop is free accepts), routes with
 * a pool that counts load in the shared machine state, and asks the main thread for starts, so a
 * machine is started once however many threads want it. Logs and metrics go to the main thread.
 * @module
 */
import type { Server } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../core/logger.js';
import type { DataPlaneConfig, FromDataPlane, ToDataPlane } from './data-plane-messages.js';
import { HttpProxy } from './http-proxy.js';
import { copiesOfListener, serverOnCopy } from './listener-copies.js';
import { MachineState } from './machine-state.js';
import { ProxyMetrics } from './metrics.js';
import { MachinePool } from './pool.js';

async function main(port: NonNullable<typeof parentPort>, config: DataPlaneConfig): Promise<void> {
  const send = (m: FromDataPlane) => port.postMessage(m);
  const logger: Logger = {
    info: (msg, fields) => send({ type: 'log', level: 'info', msg, ...(fields ? { fields } : {}) }),
    warn: (msg, fields) => send({ type: 'log', level: 'warn', msg, ...(fields ? { fields } : {}) }),
    error: (msg, fields) => send({ type: 'log', level: 'error', msg, ...(fields ? { fields } : {}) }),
    child: () => logger,
  };
  const metrics = new ProxyMetrics();
  const starts = new Map<number, { resolve(): void; reject(e: Error): void }>();
  let nextStart = 1;
  const pool = new MachinePool({
    region: config.region, regionOrder: config.regionOrder, logger, metrics, ...config.poolLimits,
    state: new MachineState(config.state, config.threadIndex),
    remoteStart: (m, internalPort, deadline) => new Promise((resolve, reject) => {
      const id = nextStart++;
      starts.set(id, { resolve, reject });
      send({ type: 'start', id, machine: m.id, internalPort, deadline });
    }),
  });
  const http = new HttpProxy({ pool, domain: config.domain, region: config.region, logger, metrics, httpsPort: () => config.httpsPort, ...config.httpTimeouts });
  let server: Server | undefined;

  port.on('message', (m: ToDataPlane) => {
    switch (m.type) {
      case 'route':
        pool.apply(m.event, m.slots);
        return;
      case 'started': {
        const waiting = starts.get(m.id);
        starts.delete(m.id);
        if (m.error === undefined) waiting?.resolve();
        else waiting?.reject(new Error(m.error));
        return;
      }
      case 'metrics':
        send({ type: 'metrics', id: m.id, snapshot: metrics.snapshot() });
        return;
      case 'close':
        http.close();
        if (!server) return send({ type: 'closed' });
        server.close(() => send({ type: 'closed' }));
    }
  });

  try {
    const [handle] = await copiesOfListener(config.listenFd, 1);
    server = await serverOnCopy(handle, config.backlog, (s) => http.handle(s.setNoDelay(true), 'http', config.listenerPort), (h) => http.adopt(h, config.listenerPort));
    send({ type: 'ready' });
  } catch (err) {
    send({ type: 'failed', error: (err as Error).message });
  }
}

if (parentPort) void main(parentPort, workerData as DataPlaneConfig);
