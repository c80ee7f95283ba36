/**
 * One data-plane thread (worker_threads entry, started by data-plane.ts): the plain HTTP listener's
 * data path on its own event loop and core. It listens on its own descriptor of the main thread's
 * listening socket (the kernel keeps one accept queue; whichever loop is free accepts), routes with
 * a pool that counts load in the shared machine state, and asks the main thread for starts, so a
 * machine is started once however many threads want it. Logs and metrics go to the main thread.
 * @module
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import type { HangarClient } from '../client/client.js';
import type { Logger } from '../core/logger.js';
import { acceptRaw } from './accept-raw.js';
import type { DataPlaneConfig, FromDataPlane, ToDataPlane } from './data-plane-messages.js';
import { HttpProxy } from './http-proxy.js';
import { MachineState } from './machine-state.js';
import { ProxyMetrics } from './metrics.js';
import { MachinePool } from './pool.js';

/**
 * Sends back the descriptor it inherited as fd 3 over its IPC channel, then leaves. The socket is
 * wrapped without reading or listening (a listen here would accept connections nobody serves, and
 * re-listen with another backlog), so it arrives here as a raw handle of a new descriptor that this
 * thread owns: closing it never closes the main thread's.
 */
const COPY_HELPER = `
const { Socket } = require('node:net');
const socket = new Socket({ fd: 3, readable: false, writable: false });
process.send({ copy: true }, socket._handle, { keepOpen: true }, () => process.exit(0));`;

/** A handle of the listening socket `fd` that this thread owns (through a short-lived helper process). */
function copyOfListener(fd: number, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', COPY_HELPER], { stdio: ['ignore', 'ignore', 'inherit', fd, 'ipc'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no copy of the listening socket from the helper process within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start the helper that copies the listening socket: ${err.message}`));
    });
    child.on('message', (_m, handle) => {
      clearTimeout(timer);
      if (handle) resolve(handle);
      else reject(new Error('the helper sent no copy of the listening socket'));
    });
    // 'close', not 'exit': it comes after the IPC channel is read to its end, so after the message.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the helper that copies the listening socket exited (${signal ?? `code ${code}`}) before sending it`));
    });
  });
}

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
    // Never called here: starts go to the main thread (remoteStart).
    client: undefined as unknown as HangarClient,
    region: config.region, regionOrder: config.regionOrder, logger, metrics,
    queueTimeoutMs: config.queueTimeoutMs, maxQueuedPerApp: config.maxQueuedPerApp,
    startTimeoutMs: config.startTimeoutMs, failedStartBackoffMs: config.failedStartBackoffMs,
    state: new MachineState(config.state, config.threadIndex),
    remoteStart: (m, internalPort, deadline) => new Promise((resolve, reject) => {
      const id = nextStart++;
      starts.set(id, { resolve, reject });
      send({ type: 'start', id, machine: m.id, internalPort, deadline });
    }),
  });
  const http = new HttpProxy({
    pool, domain: config.domain, region: config.region, logger, metrics, httpsPort: () => config.httpsPort,
    ...(config.headTimeoutMs ? { headTimeoutMs: config.headTimeoutMs } : {}),
    ...(config.idleTimeoutMs ? { idleTimeoutMs: config.idleTimeoutMs } : {}),
    ...(config.upstreamTimeoutMs ? { upstreamTimeoutMs: config.upstreamTimeoutMs } : {}),
  });
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
    const handle = await copyOfListener(config.listenFd);
    server = createServer({ noDelay: true }, (s) => http.handle(s, 'http', config.listenerPort));
    // listen() on a listening socket only sets its backlog again: keep the main thread's.
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(handle as never, config.backlog, () => resolve());
    });
    try {
      acceptRaw(server, (h) => http.adopt(h, config.listenerPort));
    } catch {
      // A Node without the accept hook: the connection handler above serves with Node sockets.
    }
    send({ type: 'ready' });
  } catch (err) {
    send({ type: 'failed', error: (err as Error).message });
  }
}

if (parentPort) void main(parentPort, workerData as DataPlaneConfig);
