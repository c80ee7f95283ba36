/**
 * The route watch stream proxies follow (a Hangar extension of the Machines API):
 * `GET /v1/watch/routes` answers NDJSON, one `RouteEvent` per line: first a `snapshot` of every
 * machine the token may see that is not destroyed, then an `upsert` whenever a machine changes
 * (state, address, config, checks, cordon) and a `remove` when it is destroyed or its app deleted,
 * with `heartbeat` lines every 15 s so a dead connection is noticed. `seq` increases by one per
 * line of one connection. A proxy that loses the connection reconnects and starts from the new
 * snapshot, so it never needs per-request calls to the API.
 * @module
 */
import type { CheckStatus, MachineConfig } from './machine.js';

/** What a proxy needs to know about one machine to route to it and to start or stop it. */
export interface RouteMachine {
  id: string;
  app_name: string;
  org_slug: string;
  region: string;
  state: string;
  /** The machine's private (6PN-style) IPv6 address; the host reaches it directly. */
  private_ip: string;
  version: string;
  /** Cordoned machines get no new traffic. */
  cordoned: boolean;
  /** `config.services` as stored (autostop normalized to "off" | "stop" | "suspend"). */
  services: NonNullable<MachineConfig['services']>;
  /** Top-level `config.checks` (kind readiness takes a machine out of the pool when failing). */
  check_configs: NonNullable<MachineConfig['checks']>;
  /**
   * Current statuses of the service and top-level checks (docs/checks.md): `warning` until a check
   * first runs after a start, then `passing` or `critical`; empty when the machine is not started
   * or declares no checks. Route only when every service check and every `readiness` check is
   * `passing`.
   */
  checks: CheckStatus[];
  metadata: Record<string, string>;
  /** `unreachable` when the agent that owns the machine is not connected. */
  host_status: 'ok' | 'unreachable';
  updated_at: string;
}

export type RouteEvent =
  | { type: 'snapshot'; seq: number; machines: RouteMachine[] }
  | { type: 'upsert'; seq: number; machine: RouteMachine }
  | { type: 'remove'; seq: number; machine_id: string; app_name: string }
  | { type: 'heartbeat'; seq: number };
