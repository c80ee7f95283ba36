/**
 * The RPC between the API server and an agent (HTTP + JSON, `Authorization: Bearer <agent token>`).
 * The agent owns the machines on its host: the server forwards each machine operation here and
 * mirrors the agent's state into its catalog from the answers and from the event stream.
 *
 * Endpoints (all under the agent's base URL; errors use the public error body `{error, status}`):
 *
 * | method | path | body | answer |
 * | --- | --- | --- | --- |
 * | GET | /agent/v1/info | – | `AgentInfo` |
 * | GET | /agent/v1/machines | – | `AgentMachine[]` |
 * | GET | /agent/v1/machines/{id} | – | `AgentMachine` |
 * | POST | /agent/v1/machines | `AgentCreateRequest` | `AgentOpResult` |
 * | PUT | /agent/v1/machines/{id} | `AgentUpdateRequest` | `AgentOpResult` |
 * | POST | /agent/v1/machines/{id}/start | – | `AgentOpResult` |
 * | POST | /agent/v1/machines/{id}/stop | `AgentStopRequest` | `AgentOpResult` |
 * | POST | /agent/v1/machines/{id}/restart | `AgentStopRequest` | `AgentOpResult` |
 * | POST | /agent/v1/machines/{id}/suspend | – | `AgentOpResult` |
 * | POST | /agent/v1/machines/{id}/signal | `{signal: number}` | `AgentOpResult` |
 * | POST | /agent/v1/machines/{id}/exec | `AgentExecRequest` | `ExecResponse` |
 * | GET | /agent/v1/machines/{id}/ps | – | `ProcessStat[]` |
 * | DELETE | /agent/v1/machines/{id}?force=true | – | `AgentOpResult` |
 * | GET | /agent/v1/events?after=SEQ | – | NDJSON stream of `AgentEvent`, one per line, live; `{"heartbeat":SEQ}` lines every 15 s |
 * @module
 */
import { z } from 'zod';
import { type CheckStatus, MachineConfig, type MachineEvent } from './machine.js';

export interface AgentInfo {
  host_id: string;
  region: string;
  driver: string;
  capabilities: DriverCapabilities;
  /** Highest event sequence number written so far. */
  seq: number;
}

export interface DriverCapabilities {
  suspend: boolean;
  exec: boolean;
  signal: boolean;
  ps: boolean;
}

/** What the agent knows of one machine. `seq` is the sequence number of its last change. */
export interface AgentMachine {
  id: string;
  app_name: string;
  state: string;
  version: string;
  private_ip: string;
  seq: number;
  /** Health-check statuses of the current run (absent from agents that predate checks). */
  checks?: CheckStatus[];
}

/**
 * One change on the agent, in order. `event` is present when the change is one users see in the
 * machine's event list (launch, start, stop, exit, ...); transient state changes carry none.
 */
export interface AgentEvent {
  seq: number;
  machine_id: string;
  state: string;
  version: string;
  private_ip: string;
  event?: MachineEvent;
  /**
   * The machine's health-check statuses, on a change that altered them (a status change, or the
   * reset when the machine becomes started or leaves started); absent means "unchanged".
   */
  checks?: CheckStatus[];
  /**
   * The manifest digest the driver resolved the version's image to (on the change that prepared
   * the version: launch/update). Not persisted: replays carry none, the catalog keeps it.
   */
  image_digest?: string;
}

export interface AgentOpResult {
  machine: AgentMachine;
  /** Events produced by this operation, oldest first (also delivered on the stream). */
  events: AgentEvent[];
}

/** Everything the agent needs to run one version of a machine. */
export const AgentMachineSpec = z.object({
  id: z.string().regex(/^[0-9a-f]{14}$/),
  name: z.string(),
  app_name: z.string(),
  org_slug: z.string(),
  /** Numeric organization id; the network layer derives the org's private prefix from it. */
  org_id: z.number().int().nonnegative(),
  region: z.string(),
  version: z.string(),
  config: MachineConfig,
});
export type AgentMachineSpec = z.output<typeof AgentMachineSpec>;

export const AgentCreateRequest = z.object({ spec: AgentMachineSpec, start: z.boolean() });
export const AgentUpdateRequest = z.object({ spec: AgentMachineSpec, start: z.boolean() });
export const AgentStopRequest = z.object({
  /** Signal number; default: the machine's stop_config.signal, else SIGINT. */
  signal: z.number().int().min(1).max(64).optional(),
  timeout_ms: z.number().int().nonnegative().max(300_000).optional(),
});
export const AgentSignalRequest = z.object({ signal: z.number().int().min(1).max(64) });
export const AgentExecRequest = z.object({
  command: z.array(z.string()).min(1),
  stdin: z.string().optional(),
  timeout_ms: z.number().int().positive().max(3_600_000).optional(),
});

/** One line of `GET /agent/v1/machines/{id}/logs?tail=N&follow=true` (NDJSON). */
export interface AgentLogLine {
  timestamp: string;
  stream: 'stdout' | 'stderr';
  message: string;
}

/** One image name an agent's driver stores (`GET /agent/v1/images`, `GET /v1/images`). */
export interface AgentImage {
  /** Normalized name, e.g. `docker.io/library/myapp:1`. */
  name: string;
  /** Image (manifest) digest, `sha256:…`. */
  digest: string;
  /** `import` (an archive) or `pull` (a registry). */
  source: string;
  /** When the name was stored (ISO 8601); absent for names stored before it was recorded. */
  stored_at?: string;
  /** Whether a machine this agent knows (not destroyed) uses it. */
  in_use: boolean;
}

/** Answer of `POST /agent/v1/images/import?name=NAME`. */
export interface AgentImageImportResult {
  name: string;
  digest: string;
}

/** Answer of `POST /agent/v1/images/gc`: what was deleted (`name …`, `image …`, `blob …`, `rootfs …`). */
export interface AgentImageGcResult {
  removed: string[];
}
