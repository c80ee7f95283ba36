/**
 * Wire schemas for machines, in Fly's field names (snake_case), with the inferred types. Requests are
 * parsed with these schemas at the API boundary; unknown fields are dropped (ignored), known fields
 * are checked and normalized (durations become Go duration strings, `autostop` booleans become the
 * string enum the OpenAPI document declares).
 * Reference: `shared/spec/machines-openapi.yaml` (`fly.MachineConfig` and friends) and
 * `shared/reference/machines-api.md` §4–§8.
 * @module
 */
import { z } from 'zod';

const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$|^0$/;
const NS_PER_MS = 1e6;

/** A Go duration string (`"15s"`) or a nanosecond count, normalized to a string. */
export const Duration = z.union([
  z.string().regex(GO_DURATION, 'expected a duration such as "10s", "1m30s" or "500ms"'),
  z.number().int().nonnegative().transform((ns) => `${Math.round(ns / NS_PER_MS)}ms`),
]);

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const DnsLabel = z
  .string()
  .regex(DNS_LABEL, 'must be a lowercase DNS label: letters, digits and dashes, 1-63 characters, starting and ending with a letter or digit');

const Port = z.number().int().min(1, 'must be a port number 1-65535').max(65535, 'must be a port number 1-65535');
const AbsolutePath = z.string().startsWith('/', 'must be an absolute path (start with /)');
const StringMap = z.record(z.string(), z.string());

export const STOP_SIGNAL_NAMES = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGUSR1', 'SIGUSR2', 'SIGTERM'] as const;
export const SIGNAL_NAMES = [
  'SIGABRT', 'SIGALRM', 'SIGFPE', 'SIGHUP', 'SIGILL', 'SIGINT', 'SIGKILL', 'SIGPIPE', 'SIGQUIT', 'SIGSEGV', 'SIGTERM', 'SIGTRAP', 'SIGUSR1', 'SIGUSR2',
] as const;

export const MachineGuest = z.object({
  /** `shared` (default) or `performance`. */
  cpu_kind: z.enum(['shared', 'performance']).optional(),
  /** Virtual CPUs; default 1. */
  cpus: z.number().int().min(1, 'must be at least 1').max(64, 'must be at most 64').optional(),
  /** Memory in MiB; default 256. Checked against cpus and cpu_kind in `checkGuestLimits`. */
  memory_mb: z.number().int().min(128, 'must be at least 128 (MiB)').optional(),
  max_memory_mb: z.number().int().positive().optional(),
  gpu_kind: z.string().optional(),
  gpus: z.number().int().nonnegative().optional(),
  host_dedication_id: z.string().optional(),
  kernel_args: z.array(z.string()).optional(),
  persist_rootfs: z.enum(['never', 'always', 'restart']).optional(),
  required_host_features: z.array(z.string()).optional(),
});
export type MachineGuest = z.output<typeof MachineGuest>;

export const MachineInit = z.object({
  /** Replaces both the image's entrypoint and cmd. */
  exec: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  cmd: z.array(z.string()).optional(),
  tty: z.boolean().optional(),
  swap_size_mb: z.number().int().nonnegative().optional(),
  kernel_args: z.array(z.string()).optional(),
});

export const MachineRestart = z.object({
  /** `no`, `always` or `on-failure` (flyctl's alias `on-fail` is accepted). */
  policy: z
    .enum(['no', 'always', 'on-failure', 'on-fail'])
    .transform((p) => (p === 'on-fail' ? 'on-failure' : p))
    .optional(),
  /** Restarts allowed by `on-failure` (default 10). */
  max_retries: z.number().int().nonnegative().optional(),
});

export const StopConfig = z.object({
  signal: z.enum(STOP_SIGNAL_NAMES).optional(),
  timeout: Duration.optional(),
});

export const MachineFile = z
  .object({
    guest_path: AbsolutePath,
    raw_value: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64').optional(),
    secret_name: z.string().optional(),
    image_config: z.string().optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  })
  .refine((f) => [f.raw_value, f.secret_name, f.image_config].filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of raw_value, secret_name or image_config',
  });

const HttpHeader = z.object({ name: z.string(), values: z.array(z.string()) });

const CheckFields = {
  type: z.enum(['tcp', 'http']).optional(),
  port: Port.optional(),
  interval: Duration.optional(),
  timeout: Duration.optional(),
  grace_period: Duration.optional(),
  method: z.string().optional(),
  path: z.string().optional(),
  protocol: z.enum(['http', 'https']).optional(),
  tls_server_name: z.string().optional(),
  tls_skip_verify: z.boolean().optional(),
  headers: z.array(HttpHeader).optional(),
};
export const MachineServiceCheck = z.object(CheckFields);
export const MachineCheck = z.object({ ...CheckFields, kind: z.enum(['informational', 'readiness']).optional() });

export const MachinePort = z
  .object({
    port: Port.optional(),
    start_port: Port.optional(),
    end_port: Port.optional(),
    handlers: z.array(z.enum(['http', 'tls', 'pg_tls', 'proxy_proto', 'edge_http'])).optional(),
    force_https: z.boolean().optional(),
    tls_options: z.looseObject({}).optional(),
    http_options: z.looseObject({}).optional(),
    proxy_proto_options: z.looseObject({}).optional(),
  })
  .refine((p) => p.port !== undefined || (p.start_port !== undefined && p.end_port !== undefined), {
    message: 'set port, or start_port and end_port',
  });

export const MachineServiceConcurrency = z
  .object({
    type: z.enum(['connections', 'requests']).optional(),
    soft_limit: z.number().int().positive().optional(),
    hard_limit: z.number().int().positive().optional(),
  })
  .refine((c) => c.soft_limit === undefined || c.hard_limit === undefined || c.soft_limit <= c.hard_limit, {
    message: 'soft_limit must not exceed hard_limit',
  });

/** `autostop` accepts `"off" | "stop" | "suspend"` and the booleans older clients send; answers the string. */
export const Autostop = z
  .union([z.enum(['off', 'stop', 'suspend']), z.boolean()])
  .transform((v) => (v === true ? 'stop' : v === false ? 'off' : v));

export const MachineService = z.object({
  protocol: z.enum(['tcp', 'udp']),
  internal_port: Port,
  ports: z.array(MachinePort).optional(),
  concurrency: MachineServiceConcurrency.optional(),
  autostop: Autostop.optional(),
  autostart: z.boolean().optional(),
  min_machines_running: z.number().int().nonnegative().optional(),
  checks: z.array(MachineServiceCheck).optional(),
  force_instance_key: z.string().nullable().optional(),
  force_instance_description: z.string().nullable().optional(),
});

export const MachineMount = z.object({
  volume: z.string().min(1, 'must name a volume id'),
  path: AbsolutePath.refine((p) => p !== '/', 'cannot be / (mount a volume below the root)'),
  name: z.string().optional(),
  size_gb: z.number().int().positive().optional(),
  encrypted: z.boolean().optional(),
  extend_threshold_percent: z.number().int().optional(),
  add_size_gb: z.number().int().optional(),
  add_size_percent: z.number().int().optional(),
  min_add_size_gb: z.number().int().optional(),
  size_gb_limit: z.number().int().optional(),
});

export const MachineConfig = z.object({
  /** The OCI image to run; the only required field. */
  image: z.string().trim().min(1, 'is required: name an OCI image, e.g. "registry.example.com/app:latest"'),
  env: StringMap.optional(),
  init: MachineInit.optional(),
  guest: MachineGuest.optional(),
  /** Deprecated preset name (`shared-cpu-1x`, `performance-2x`, ...); turned into `guest`. */
  size: z.string().optional(),
  metadata: StringMap.optional(),
  services: z.array(MachineService).optional(),
  checks: z.record(z.string(), MachineCheck).optional(),
  mounts: z.array(MachineMount).max(1, 'a machine can mount at most one volume').optional(),
  restart: MachineRestart.optional(),
  auto_destroy: z.boolean().optional(),
  schedule: z.enum(['hourly', 'daily', 'weekly', 'monthly']).optional(),
  stop_config: StopConfig.optional(),
  files: z.array(MachineFile).optional(),
  processes: z.array(z.looseObject({})).optional(),
  dns: z.looseObject({}).optional(),
  statics: z.array(z.looseObject({ guest_path: z.string(), url_prefix: z.string() })).optional(),
  metrics: z.looseObject({}).optional(),
  standbys: z.array(z.string()).optional(),
  containers: z.array(z.looseObject({})).optional(),
  volumes: z.array(z.looseObject({})).optional(),
  rootfs: z.looseObject({}).optional(),
  cache_drive: z.looseObject({}).optional(),
  spot: z.looseObject({}).optional(),
  disable_machine_autostart: z.boolean().optional(),
});
export type MachineConfig = z.output<typeof MachineConfig>;

export const CreateMachineRequest = z.object({
  name: DnsLabel.optional(),
  region: z.string().regex(/^[a-z]{3}$/, 'must be a three-letter region code such as "ams"').optional(),
  config: MachineConfig,
  skip_launch: z.boolean().optional(),
  skip_service_registration: z.boolean().optional(),
  skip_secrets: z.boolean().optional(),
  min_secrets_version: z.number().int().nonnegative().optional(),
  lease_ttl: z.number().int().positive().max(3600, 'must be at most 3600 (seconds)').optional(),
  lsvd: z.boolean().optional(),
});
export type CreateMachineRequest = z.output<typeof CreateMachineRequest>;

export const UpdateMachineRequest = CreateMachineRequest.extend({
  current_version: z.string().optional(),
});
export type UpdateMachineRequest = z.output<typeof UpdateMachineRequest>;

export const StopRequest = z.object({
  signal: z.union([z.string(), z.number().int()]).optional(),
  timeout: Duration.optional(),
});

export const SignalRequest = z.object({ signal: z.union([z.string(), z.number().int()]) });

export const ExecRequest = z
  .object({
    command: z.array(z.string()).min(1, 'must have at least one element').optional(),
    /** Deprecated single string; split on whitespace. flyctl still sends it. */
    cmd: z.string().min(1).optional(),
    stdin: z.string().optional(),
    timeout: z.number().int().positive().max(3600).optional(),
    container: z.string().optional(),
    machine: z.boolean().optional(),
  })
  .refine((r) => r.command !== undefined || r.cmd !== undefined, { message: 'set command (array) or cmd (string)' });

export const CreateLeaseRequest = z.object({
  ttl: z.number().int().positive().max(3600, 'must be at most 3600 (seconds)').optional(),
  description: z.string().max(1024).optional(),
});

export const UpdateMetadataRequest = z.object({
  metadata: z.record(z.string(), z.string().nullable()),
  machine_version: z.string().optional(),
  updated_at: z.string().optional(),
});

export const UpsertMetadataKeyRequest = z.object({ value: z.string(), updated_at: z.string().optional() });

/** A record of something that happened to a machine; `timestamp` is ms since the epoch. */
export interface MachineEvent {
  id: string;
  type: string;
  status: string;
  source: 'user' | 'flyd';
  timestamp: number;
  request?: Record<string, unknown>;
}

export interface CheckStatus {
  name: string;
  status: 'passing' | 'warning' | 'critical';
  output: string;
  updated_at: string;
}

export interface ImageRef {
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  labels: Record<string, string>;
}

/** The machine as `GET /v1/apps/{app}/machines/{id}` answers it. */
export interface Machine {
  id: string;
  name: string;
  state: string;
  region: string;
  instance_id: string;
  version: string;
  private_ip: string;
  config?: MachineConfig;
  incomplete_config?: MachineConfig;
  image_ref: ImageRef;
  created_at: string;
  updated_at: string;
  events?: MachineEvent[];
  checks?: CheckStatus[];
  host_status: 'ok' | 'unknown' | 'unreachable';
  cordoned?: boolean;
  nonce?: string;
  lease?: { owner: string; description: string; expires_at: number };
}

export interface Lease {
  nonce: string;
  expires_at: number;
  owner: string;
  description: string;
  version: string;
}

export interface ExecResponse {
  stdout: string;
  stderr: string;
  exit_code: number;
  exit_signal: number;
}

export interface ProcessStat {
  pid: number;
  command: string;
  directory: string;
  /** User + system CPU time, whole milliseconds. */
  cpu: number;
  /** Resident memory, bytes. */
  rss: number;
  /** Seconds since the process started. */
  rtime: number;
  /** System CPU time, whole milliseconds. */
  stime: number;
  listen_sockets: { proto: string; address: string }[];
}

export interface WaitMachineResponse {
  ok: boolean;
  state: string;
  event_id: string;
  version: string;
}

export interface MachineVersion {
  version: string;
  user_config: MachineConfig;
}

/**
 * One line of a machine's output as `GET /v1/apps/{app}/logs` streams it (NDJSON). A Hangar
 * extension: Fly serves logs outside the Machines API, so the shape follows `fly logs --json`.
 */
export interface LogEntry {
  timestamp: string;
  machine_id: string;
  region: string;
  stream: 'stdout' | 'stderr';
  message: string;
}
