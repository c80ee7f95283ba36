/**
 * `hangar agent`: runs this host's agent until SIGINT/SIGTERM. The only agent file that reads argv
 * and the environment.
 *
 *   hangar agent [--data-dir DIR] [--listen HOST:PORT] [--region CODE] [--driver fake|crun|runc]
 *                [--host-id ID] [--token-file FILE] [--allow-egress] [--stop-machines-on-exit] [--image-gc-interval 1h]
 *
 * The agent token is read from `--token-file` (default `<data-dir>/agent-token`); when that file does
 * not exist a random token is written there with mode 0600, so a local `hangar up` and the agent
 * agree without the token ever appearing on a command line or in a log.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../core/durations.js';
import { createLogger, type Logger } from '../core/logger.js';
import { createAgent } from './create-agent.js';
import { createDriver, driverNames } from './drivers/registry.js';

export const DEFAULT_AGENT_LISTEN = '127.0.0.1:4281';
export const DEFAULT_AGENT_REGION = 'lcl';

export interface AgentMainOptions {
  env?: NodeJS.ProcessEnv;
  /** Where human-facing lines go (the fake-driver warning, the listening line). */
  stderr?: (line: string) => void;
  logger?: Logger;
  /** Stops the agent when aborted (tests); SIGINT/SIGTERM always do. */
  signal?: AbortSignal;
  /** Called once the agent listens. */
  onListening?: (url: string) => void;
}

export class AgentUsageError extends Error {}

export interface AgentFlags {
  dataDir: string;
  listen: { host: string; port: number };
  region: string;
  driver: string;
  hostId?: string;
  tokenFile: string;
  /** Machines may open connections to the internet (IPv4 masquerade); off unless `--allow-egress`. */
  allowEgress?: boolean;
  /** Kill the machines' containers when the agent stops (`hangar up`); off for a standalone agent. */
  stopMachinesOnExit?: boolean;
  /** Periodic image GC interval (docs/images.md); default 1 h, 0 = off. */
  imageGcIntervalMs?: number;
}

export function parseAgentArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): AgentFlags {
  const options = {
    'data-dir': { type: 'string' },
    listen: { type: 'string' },
    region: { type: 'string' },
    driver: { type: 'string' },
    'host-id': { type: 'string' },
    'token-file': { type: 'string' },
    'image-gc-interval': { type: 'string' },
    'allow-egress': { type: 'boolean' },
    'stop-machines-on-exit': { type: 'boolean' },
  } as const;
  let values: { [K in Exclude<keyof typeof options, 'allow-egress' | 'stop-machines-on-exit'>]?: string } & { 'allow-egress'?: boolean; 'stop-machines-on-exit'?: boolean };
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new AgentUsageError(`hangar agent: ${(err as Error).message.split('\n')[0]}; known flags: ${Object.keys(options).map((o) => `--${o}`).join(', ')}`);
  }
  const dataDir = values['data-dir'] ?? defaultAgentDataDir(env);
  const driver = values.driver ?? 'fake';
  if (!driverNames().includes(driver)) throw new AgentUsageError(`--driver: unknown driver ${JSON.stringify(driver)}; choose one of: ${driverNames().join(', ')}`);
  const region = values.region ?? DEFAULT_AGENT_REGION;
  if (!/^[a-z]{3}$/.test(region)) throw new AgentUsageError(`--region: expected a three-letter lowercase region code such as "ams", got ${JSON.stringify(region)}`);
  const flags: AgentFlags = {
    dataDir,
    listen: parseListen(values.listen ?? DEFAULT_AGENT_LISTEN),
    region,
    driver,
    tokenFile: values['token-file'] ?? join(dataDir, 'agent-token'),
  };
  if (values['host-id']) flags.hostId = values['host-id'];
  if (values['allow-egress']) flags.allowEgress = true;
  if (values['stop-machines-on-exit']) flags.stopMachinesOnExit = true;
  if (values['image-gc-interval'] !== undefined) {
    const ms = parseDuration(values['image-gc-interval']);
    if (ms === undefined) throw new AgentUsageError(`--image-gc-interval: expected a duration such as 1h or 30m (0 turns periodic image GC off), got ${JSON.stringify(values['image-gc-interval'])}`);
    flags.imageGcIntervalMs = ms;
  }
  return flags;
}

/**
 * `HANGAR_AGENT_NETWORK` (JSON: bridge, ipv4Cidr, ipv6Net, netnsPrefix, nftTable, dnsPort): a host
 * network of its own, so end-to-end tests never touch the default `hangar0` of a real installation.
 */
function networkFromEnv(env: NodeJS.ProcessEnv): { network?: Record<string, string | number> } {
  const raw = env.HANGAR_AGENT_NETWORK;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new AgentUsageError(`HANGAR_AGENT_NETWORK: not JSON: ${raw}`);
  }
  const allowed = new Set(['bridge', 'ipv4Cidr', 'ipv6Net', 'netnsPrefix', 'nftTable', 'dnsPort']);
  if (typeof parsed !== 'object' || parsed === null || Object.entries(parsed).some(([k, v]) => !allowed.has(k) || !['string', 'number'].includes(typeof v))) {
    throw new AgentUsageError(`HANGAR_AGENT_NETWORK: expected an object with some of ${[...allowed].join(', ')}, got ${raw}`);
  }
  return { network: parsed as Record<string, string | number> };
}

export function defaultAgentDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.HANGAR_DATA_DIR ?? (process.getuid?.() === 0 ? '/var/lib/hangar' : join(homedir(), '.local', 'share', 'hangar'));
  return join(root, 'agent');
}

/** `127.0.0.1:4281`, `:4281`, `[::1]:4281` → host and port. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new AgentUsageError(`--listen: expected HOST:PORT such as ${DEFAULT_AGENT_LISTEN}, got ${JSON.stringify(value)}`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** Reads the token file, creating it (0600) with a fresh token when absent. */
export function ensureTokenFile(path: string): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  }
  const token = readFileSync(path, 'utf8').trim();
  if (!token) throw new AgentUsageError(`--token-file: ${path} is empty; put a token in it or delete it to have one generated`);
  return token;
}

export async function runAgentMain(argv: string[], options: AgentMainOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const say = options.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  const flags = parseAgentArgs(argv, env);
  mkdirSync(flags.dataDir, { recursive: true, mode: 0o700 });
  const token = ensureTokenFile(flags.tokenFile);
  const logger = options.logger ?? createLogger({ role: 'agent' });
  if (flags.driver === 'fake') {
    say('hangar agent: WARNING: the fake driver runs nothing; machines only pretend to run (for tests and demos). Use a real driver on a real host.');
  }
  const hostId = flags.hostId;
  const driver = createDriver(flags.driver, { dataDir: flags.dataDir, hostId: hostId ?? flags.dataDir, logger, allowEgress: flags.allowEgress === true, ...networkFromEnv(env) });
  const agent = createAgent({ dataDir: flags.dataDir, region: flags.region, driver, token, logger, listen: flags.listen, ...(hostId ? { hostId } : {}),
    ...(flags.imageGcIntervalMs !== undefined ? { imageGc: { intervalMs: flags.imageGcIntervalMs } } : {}),
  });

  let markCleaned!: () => void;
  const stoppedCleanup = new Promise<void>((r) => (markCleaned = r));
  const stopped = new Promise<string>((resolve) => {
    const onSignal = (name: string) => () => resolve(name);
    const int = onSignal('SIGINT');
    const term = onSignal('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
    options.signal?.addEventListener('abort', () => resolve('abort'), { once: true });
    void stoppedCleanup.then(() => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
    });
  });

  try {
    const { url } = await agent.start();
    say(`hangar agent: listening on ${url} (host ${agent.hostId}, region ${flags.region}, driver ${flags.driver}, data ${flags.dataDir})`);
    options.onListening?.(url);
    const reason = await stopped;
    say(`hangar agent: ${reason === 'abort' ? 'stopping' : `${reason} received; stopping`} ...`);
    return 0;
  } finally {
    await agent.close();
    if (flags.stopMachinesOnExit && flags.driver !== 'fake') await killContainers(flags.dataDir, flags.driver, say);
    markCleaned();
  }
}

/**
 * `--stop-machines-on-exit` (what `hangar up` passes): after the agent stopped, kill every container
 * it runs, as a host shutdown would. Their recorded state is untouched, so the next start recovers
 * them like after a reboot: restart policy `always`/`on-failure` brings them back, `no` leaves them
 * stopped with an exit event.
 */
async function killContainers(dataDir: string, driver: string, say: (line: string) => void): Promise<void> {
  const { findRuntime, OciRuntime } = await import('./drivers/crun/runtime.js');
  const bin = findRuntime(driver === 'runc' ? 'runc' : undefined);
  if (!bin) return;
  const runtime = new OciRuntime(bin, join(dataDir, 'runtime'));
  const containers = await runtime.list().catch(() => []);
  if (containers.length > 0) {
    say(`hangar agent: stopping ${containers.length} machine${containers.length === 1 ? '' : 's'} ...`);
    for (const c of containers) await runtime.exec(['kill', c.id, 'KILL']).catch(() => undefined);
    // Each machine's shim records the exit and crun deletes the container; wait for that (bounded).
    for (let i = 0; i < 200 && (await runtime.list().catch(() => [])).length > 0; i++) await new Promise((r) => setTimeout(r, 25));
    for (const c of await runtime.list().catch(() => [])) await runtime.exec(['delete', '--force', c.id]).catch(() => undefined);
  }
  // A reboot would drop the machines' overlay mounts too; leave none behind on the host. The next
  // start mounts a fresh one anyway (a restarted machine is a blank slate).
  const { unmountMachineRootfs } = await import('./images/overlay.js');
  const machinesDir = join(dataDir, 'machines');
  for (const id of await readdir(machinesDir).catch(() => [] as string[])) {
    await unmountMachineRootfs(join(machinesDir, id)).catch(() => undefined);
  }
}

// `node dist/src/agent/main.js ...` runs the agent directly (the e2e test and debugging use this;
// `hangar agent` goes through src/main.ts).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runAgentMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = err instanceof AgentUsageError ? 2 : 1;
    },
  );
}
