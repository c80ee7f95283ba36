/**
 * Flags that shape a MachineConfig (`machine run|create|update|clone`), validated locally so a
 * typo is reported before any request: `--vm-memory abc` → `--vm-memory: expected a number of
 * MiB, got 'abc'`. Also the small parsers other commands share (durations, signals, shell words).
 * @module
 */
import { shellWords } from '../core/shell-words.js';
import type { MachineConfig } from '../api-types/machine.js';
import { formatDuration, parseDuration } from '../core/durations.js';
import { STOP_SIGNALS, resolveSignal, type SignalName } from '../core/signals.js';
import { UsageError } from './errors.js';
import type { FlagSpecs, FlagValues } from './framework.js';

export const CONFIG_FLAGS = {
  env: { type: 'array', short: 'e', description: 'Set an environment variable', valueName: 'NAME=VALUE' },
  metadata: { type: 'array', short: 'm', description: 'Set a metadata key', valueName: 'KEY=VALUE' },
  port: {
    type: 'array', short: 'p', valueName: 'PORT[:MACHINE_PORT][/PROTOCOL[:HANDLER...]]',
    description: 'Expose a port, e.g. 443:8080/tcp:http:tls or 80:8080/tcp:http,tls',
  },
  'vm-size': { type: 'string', valueName: 'SIZE', description: 'Preset size: shared-cpu-1x..8x, performance-1x..16x' },
  'vm-cpus': { type: 'string', valueName: 'N', description: 'Number of vCPUs' },
  'vm-memory': { type: 'string', valueName: 'MIB', description: 'Memory in MiB (or 512mb, 1gb)' },
  'vm-cpu-kind': { type: 'string', valueName: 'KIND', description: 'shared or performance' },
  restart: { type: 'string', valueName: 'POLICY', description: 'Restart policy: no, always or on-failure (on-fail)' },
  entrypoint: { type: 'string', valueName: 'COMMAND', description: "Override the image's entrypoint ('/bin/sh -c')" },
  schedule: { type: 'string', valueName: 'INTERVAL', description: 'Run on a schedule: hourly, daily, weekly or monthly' },
} as const satisfies FlagSpecs;

export type ConfigFlagValues = FlagValues<typeof CONFIG_FLAGS>;

type Guest = NonNullable<MachineConfig['guest']>;

/** fly-go's `MachinePresets`. */
export const VM_SIZES: Record<string, Guest> = (() => {
  const sizes: Record<string, Guest> = {};
  for (const n of [1, 2, 4, 6, 8]) sizes[`shared-cpu-${n}x`] = { cpu_kind: 'shared', cpus: n, memory_mb: 256 * n };
  for (const n of [1, 2, 4, 6, 8, 10, 12, 14, 16]) sizes[`performance-${n}x`] = { cpu_kind: 'performance', cpus: n, memory_mb: 2048 * n };
  for (const gpu of ['a100-40gb', 'a100-80gb', 'l40s', 'a10']) {
    sizes[gpu] = { cpu_kind: 'performance', cpus: 8, memory_mb: 32768, gpu_kind: gpu === 'a100-40gb' ? 'a100-pcie-40gb' : gpu === 'a100-80gb' ? 'a100-sxm4-80gb' : gpu, gpus: 1 };
  }
  return sizes;
})();

const HANDLERS = ['http', 'tls', 'pg_tls', 'proxy_proto', 'edge_http'] as const;

/** `NAME=VALUE` pairs → a map; the value may be empty and may contain `=`. */
export function parsePairs(flag: string, values: string[], what = 'NAME=VALUE'): Record<string, string> {
  const result: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag}: expected ${what}, got '${value}'`);
    result[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return result;
}

export function parsePositiveInt(flag: string, value: string, what: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new UsageError(`--${flag}: expected ${what}, got '${value}'`);
  return Number(value);
}

/** `512`, `512mb`, `1gb`, `1.5GiB` → MiB. */
export function parseMemory(flag: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(mb|mib|m|gb|gib|g)?$/i.exec(value.trim());
  if (!match) throw new UsageError(`--${flag}: expected a number of MiB, got '${value}'`);
  const unit = (match[2] ?? 'mb').toLowerCase();
  const mib = Number(match[1]) * (unit.startsWith('g') ? 1024 : 1);
  if (!Number.isInteger(mib) || mib <= 0) throw new UsageError(`--${flag}: expected a number of MiB, got '${value}'`);
  return mib;
}

export interface ParsedPort {
  port: number;
  internalPort: number;
  protocol: 'tcp' | 'udp';
  handlers: string[];
}

/** flyctl's `-p port[:machinePort][/protocol[:handler[:handler...]]]`; handlers may also be comma-separated. */
export function parsePort(value: string): ParsedPort {
  const fail = (why: string): never => {
    throw new UsageError(`--port: ${why} in '${value}'; expected PORT[:MACHINE_PORT][/PROTOCOL[:HANDLER...]], e.g. 443:8080/tcp:http:tls`);
  };
  const [ports = '', proto] = value.split('/', 2);
  const [edge = '', internal] = ports.split(':', 2);
  const toPort = (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) fail(`'${text}' is not a port number 1-65535`);
    return Number(text);
  };
  const port = toPort(edge);
  const internalPort = internal === undefined ? port : toPort(internal);
  let protocol: 'tcp' | 'udp' = 'tcp';
  let handlers: string[] = [];
  if (proto !== undefined) {
    const [protocolText = '', ...rest] = proto.split(':');
    if (protocolText !== 'tcp' && protocolText !== 'udp') fail(`unknown protocol '${protocolText}' (use tcp or udp)`);
    protocol = protocolText as 'tcp' | 'udp';
    handlers = rest.flatMap((h) => h.split(',')).filter(Boolean);
    for (const handler of handlers) {
      if (!(HANDLERS as readonly string[]).includes(handler)) fail(`unknown handler '${handler}' (use ${HANDLERS.join(', ')})`);
    }
    if (protocol === 'udp' && handlers.length > 0) fail('udp ports take no handlers');
  }
  return { port, internalPort, protocol, handlers };
}

/** Groups parsed ports into services, one per (internal port, protocol). */
export function portsToServices(ports: ParsedPort[]): NonNullable<MachineConfig['services']> {
  const services: NonNullable<MachineConfig['services']> = [];
  for (const p of ports) {
    let service = services.find((s) => s.internal_port === p.internalPort && s.protocol === p.protocol);
    if (!service) {
      service = { protocol: p.protocol, internal_port: p.internalPort, ports: [] };
      services.push(service);
    }
    service.ports!.push({ port: p.port, ...(p.handlers.length ? { handlers: p.handlers as (typeof HANDLERS)[number][] } : {}) });
  }
  return services;
}


export function parseRestartPolicy(value: string): 'no' | 'always' | 'on-failure' {
  const policy = value.trim().toLowerCase();
  if (policy === 'no' || policy === 'always' || policy === 'on-failure') return policy;
  if (policy === 'on-fail') return 'on-failure';
  throw new UsageError(`--restart: expected no, always or on-failure, got '${value}'`);
}

/** A stop signal by name or number (`SIGTERM`, `TERM`, `15`). */
export function parseStopSignal(flag: string, value: string): SignalName {
  const signal = resolveSignal(value, STOP_SIGNALS);
  if (!signal) throw new UsageError(`--${flag}: expected one of ${STOP_SIGNALS.join(', ')}, got '${value}'`);
  return signal;
}

/** A Go duration (`10s`, `1m30s`) or plain seconds → milliseconds. */
export function parseDurationFlag(flag: string, value: string): number {
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined) throw new UsageError(`--${flag}: expected seconds or a duration such as 10s or 5m, got '${value}'`);
  return ms;
}

/** The flags `machine stop` and `machine restart` both take (their help texts differ, their values do not). */
export interface StopFlagValues {
  signal: string | undefined;
  timeout: string | undefined;
  'wait-timeout': string;
}

export interface ParsedStopFlags {
  /** Holds only the flags given, so an absent one is left out of the request and the server's default applies. */
  stop: { signal?: SignalName; timeout?: string };
  /** How long the CLI waits for the machine to reach its next state. */
  waitMs: number;
}

/**
 * `--signal`, `--timeout` and `--wait-timeout` of `machine stop|restart`, checked in that order so
 * the first bad value is the one reported, before any request is made.
 */
export function parseStopFlags(flags: StopFlagValues): ParsedStopFlags {
  const stop: ParsedStopFlags['stop'] = {};
  if (flags.signal !== undefined) stop.signal = parseStopSignal('signal', flags.signal);
  if (flags.timeout !== undefined) stop.timeout = formatDuration(parseDurationFlag('timeout', flags.timeout));
  return { stop, waitMs: parseDurationFlag('wait-timeout', flags['wait-timeout']) };
}

/**
 * Applies the config flags to a copy of `base` (empty for `run`, the current config for `update`).
 * Env and metadata merge; `--port` replaces services on the same internal port; guest flags
 * override the preset.
 */
export function applyConfigFlags(base: MachineConfig, flags: ConfigFlagValues): MachineConfig {
  const config: MachineConfig = structuredClone(base);
  if (flags.env.length) config.env = { ...config.env, ...parsePairs('env', flags.env) };
  if (flags.metadata.length) config.metadata = { ...config.metadata, ...parsePairs('metadata', flags.metadata, 'KEY=VALUE') };
  const guest: Guest = { ...config.guest };
  let guestChanged = false;
  if (flags['vm-size'] !== undefined) {
    const preset = VM_SIZES[flags['vm-size']];
    if (!preset) throw new UsageError(`--vm-size: unknown size '${flags['vm-size']}'; expected one of ${Object.keys(VM_SIZES).join(', ')}`);
    Object.assign(guest, preset);
    guestChanged = true;
  }
  if (flags['vm-cpus'] !== undefined) {
    guest.cpus = parsePositiveInt('vm-cpus', flags['vm-cpus'], 'a number of vCPUs');
    guestChanged = true;
  }
  if (flags['vm-memory'] !== undefined) {
    guest.memory_mb = parseMemory('vm-memory', flags['vm-memory']);
    guestChanged = true;
  }
  if (flags['vm-cpu-kind'] !== undefined) {
    const kind = flags['vm-cpu-kind'];
    if (kind !== 'shared' && kind !== 'performance') throw new UsageError(`--vm-cpu-kind: expected shared or performance, got '${kind}'`);
    guest.cpu_kind = kind;
    guestChanged = true;
  }
  if (guestChanged) {
    config.guest = guest;
    delete config.size;
  }
  if (flags.port.length) {
    const services = portsToServices(flags.port.map(parsePort));
    const kept = (config.services ?? []).filter((s) => !services.some((n) => n.internal_port === s.internal_port && n.protocol === s.protocol));
    config.services = [...kept, ...services];
  }
  if (flags.restart !== undefined) config.restart = { ...config.restart, policy: parseRestartPolicy(flags.restart) };
  if (flags.entrypoint !== undefined) config.init = { ...config.init, entrypoint: shellWords('--entrypoint', flags.entrypoint) };
  if (flags.schedule !== undefined) {
    const schedule = flags.schedule;
    if (schedule !== 'hourly' && schedule !== 'daily' && schedule !== 'weekly' && schedule !== 'monthly') {
      throw new UsageError(`--schedule: expected hourly, daily, weekly or monthly, got '${schedule}'`);
    }
    config.schedule = schedule;
  }
  return config;
}

export { shellWords };
