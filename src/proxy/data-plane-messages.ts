/**
 * What the proxy's main thread and its data-plane threads (data-plane.ts) say to each other.
 * @module
 */
import type { RouteEvent } from '../api-types/watch.js';
import type { MachineStateLayout } from './machine-state.js';
import type { HttpTimeouts } from './http-proxy.js';
import type { MetricsSnapshot } from './metrics.js';
import type { PoolLimits } from './pool.js';

/** Everything a data-plane thread needs to serve the plain HTTP listener (workerData). */
export interface DataPlaneConfig {
  threadIndex: number;
  state: MachineStateLayout;
  /** The listening socket's descriptor in this process; the thread listens on its own copy. */
  listenFd: number;
  listenerPort: number;
  backlog: number;
  domain: string;
  region: string;
  regionOrder: string[];
  httpsPort: number | undefined;
  /** The same limits the main thread's pool and HTTP handler use. */
  poolLimits: PoolLimits;
  httpTimeouts: HttpTimeouts;
}

export type ToDataPlane =
  | { type: 'route'; event: RouteEvent; slots: Record<string, number> }
  | { type: 'started'; id: number; error?: string }
  | { type: 'metrics'; id: number }
  | { type: 'close' };

export type FromDataPlane =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'start'; id: number; machine: string; internalPort: number; deadline: number }
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'closed' };
