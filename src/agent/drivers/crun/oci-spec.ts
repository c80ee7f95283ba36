/**
 * The pure half of the crun driver: one machine version (spec + resolved image + network + paths)
 * → the OCI runtime `config.json` that crun/runc run. No I/O here, so every rule is table-tested in
 * `oci-spec.test.ts`.
 *
 * Rules (see `docs/crun-driver.md` for the reasoning):
 * - argv: `init.exec` replaces everything; else Docker semantics: entrypoint = `init.entrypoint` ??
 *   image Entrypoint, cmd = `init.cmd` ?? (image Cmd unless `init.entrypoint` was given), argv =
 *   entrypoint + cmd. The argv runs under tini (`/.hangar/tini -- argv`), bind-mounted read-only from
 *   the host, so PID 1 forwards SIGTERM/SIGINT to the app and reaps zombies.
 * - env: image Env, then `config.env`, then the platform's `FLY_*` variables (reserved: they win).
 * - resources: memory limit = memory_mb (swap = the same, i.e. no swap); CPU quota = cpus full
 *   cores for both kinds (a shared CPU is a full core that may be contended: shares are lower);
 *   shares 1024 per performance CPU, 256 per shared CPU; pids limit 4096 (fork bombs).
 * @module
 */
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import type { ImageRef } from '../../../api-types/machine.js';
import { DEFAULT_GUEST } from '../../../core/guest.js';

/** The slice of an OCI image config the driver uses (see `docs/runtime-design.md`). */
export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
}

export interface SpecNetwork {
  /** Path of the machine's network namespace; absent = a new empty netns (loopback only). */
  netnsPath?: string;
  ipv6: string;
  ipv4?: string;
}

export interface SpecPaths {
  /** The merged (overlay) rootfs. */
  rootfs: string;
  /** Host file bind-mounted read-only as `/.hangar/tini`. */
  tini: string;
  /** Host files bind-mounted over /etc/resolv.conf, /etc/hosts, /etc/hostname. */
  resolvConf?: string;
  hosts?: string;
  hostname?: string;
}

export interface OciSpecInput {
  spec: AgentMachineSpec;
  image: { config: ImageConfig; imageRef?: ImageRef; name?: string };
  network: SpecNetwork;
  paths: SpecPaths;
  /** cgroup parent; default `/hangar`. */
  cgroupParent?: string;
}

/** OCI runtime-spec 1.0 config (only the fields we set). */
export interface OciConfig {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: {
    namespaces: { type: string; path?: string }[];
    cgroupsPath: string;
    resources: {
      memory: { limit: number; swap: number };
      cpu: { shares: number; quota: number; period: number };
      pids: { limit: number };
      devices: { allow: boolean; access: string; type?: string; major?: number; minor?: number }[];
    };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

export const TINI_IN_CONTAINER = '/.hangar/tini';
export const CPU_PERIOD_US = 100_000;
export const PIDS_LIMIT = 4096;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** The workload's argv (without tini), Docker semantics; may be empty (the caller rejects that). */
export function machineArgv(spec: AgentMachineSpec, image: ImageConfig): string[] {
  const init = spec.config.init ?? {};
  if (init.exec && init.exec.length > 0) return [...init.exec];
  const entrypoint = init.entrypoint ?? image.Entrypoint ?? [];
  // As in Docker: overriding the entrypoint drops the image's Cmd.
  const cmd = init.cmd ?? (init.entrypoint ? [] : (image.Cmd ?? []));
  return [...entrypoint, ...cmd];
}

/** `KEY=value` list: image Env, then config.env, then the platform variables (which win). */
export function machineEnv(input: Pick<OciSpecInput, 'spec' | 'image' | 'network'>): string[] {
  const { spec, image, network } = input;
  const env = new Map<string, string>();
  for (const entry of image.config.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  for (const [k, v] of Object.entries(spec.config.env ?? {})) env.set(k, v);
  const metadata = spec.config.metadata ?? {};
  const memory = spec.config.guest?.memory_mb ?? DEFAULT_GUEST.memory_mb;
  const platform: Record<string, string> = {
    FLY_APP_NAME: spec.app_name,
    FLY_MACHINE_ID: spec.id,
    FLY_ALLOC_ID: spec.id,
    FLY_REGION: spec.region,
    FLY_PUBLIC_IP: '',
    FLY_PRIVATE_IP: network.ipv6,
    FLY_IMAGE_REF: imageRefString(image.imageRef, image.name ?? spec.config.image),
    FLY_MACHINE_VERSION: spec.version,
    FLY_PROCESS_GROUP: metadata.fly_process_group ?? metadata.process_group ?? 'app',
    PRIMARY_REGION: spec.config.env?.PRIMARY_REGION ?? spec.region,
    FLY_VM_MEMORY_MB: String(memory),
  };
  for (const [k, v] of Object.entries(platform)) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function imageRefString(ref: ImageRef | undefined, fallback: string): string {
  if (!ref) return fallback;
  const base = `${ref.registry}/${ref.repository}`;
  if (ref.digest) return `${base}${ref.tag ? `:${ref.tag}` : ''}@${ref.digest}`;
  return `${base}:${ref.tag || 'latest'}`;
}

/**
 * Numeric uid/gid from the image's `User` (`1000`, `1000:1000`). Names (`nginx`) need the image's
 * /etc/passwd, so the caller resolves them (`resolveUser` in rootfs.ts) and passes numbers here.
 */
export function parseNumericUser(user: string | undefined): { uid: number; gid: number } | undefined {
  if (!user) return { uid: 0, gid: 0 };
  const match = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!match) return undefined;
  const uid = Number(match[1]);
  return { uid, gid: match[2] !== undefined ? Number(match[2]) : uid };
}

export function machineResources(spec: AgentMachineSpec): OciConfig['linux']['resources'] {
  const guest = spec.config.guest ?? {};
  const cpus = guest.cpus ?? DEFAULT_GUEST.cpus;
  const kind = guest.cpu_kind ?? DEFAULT_GUEST.cpu_kind;
  const memoryBytes = (guest.memory_mb ?? DEFAULT_GUEST.memory_mb) * 1024 * 1024;
  return {
    memory: { limit: memoryBytes, swap: memoryBytes },
    cpu: { shares: (kind === 'performance' ? 1024 : 256) * cpus, quota: cpus * CPU_PERIOD_US, period: CPU_PERIOD_US },
    pids: { limit: PIDS_LIMIT },
    devices: [{ allow: false, access: 'rwm' }],
  };
}

export function buildOciSpec(input: OciSpecInput & { user?: { uid: number; gid: number } }): OciConfig {
  const { spec, image, network, paths } = input;
  const argv = machineArgv(spec, image.config);
  const user = input.user ?? parseNumericUser(image.config.User) ?? { uid: 0, gid: 0 };
  const caps = user.uid === 0 ? DEFAULT_CAPABILITIES : [];
  const mounts: OciConfig['mounts'] = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755'] },
    { destination: TINI_IN_CONTAINER, type: 'bind', source: paths.tini, options: ['bind', 'ro', 'nosuid', 'nodev'] },
  ];
  if (paths.resolvConf) mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: paths.resolvConf, options: ['bind', 'ro'] });
  if (paths.hosts) mounts.push({ destination: '/etc/hosts', type: 'bind', source: paths.hosts, options: ['bind', 'ro'] });
  if (paths.hostname) mounts.push({ destination: '/etc/hostname', type: 'bind', source: paths.hostname, options: ['bind', 'ro'] });
  const netns: { type: string; path?: string } = network.netnsPath ? { type: 'network', path: network.netnsPath } : { type: 'network' };
  const cwd = image.config.WorkingDir && image.config.WorkingDir.startsWith('/') ? image.config.WorkingDir : '/';
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args: [TINI_IN_CONTAINER, '-g', '--', ...argv],
      env: machineEnv(input),
      cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      // No rlimits: the workload inherits the agent's (hosts may cap RLIMIT_NOFILE below what we would ask for).
      rlimits: [],
      noNewPrivileges: true,
    },
    root: { path: paths.rootfs, readonly: false },
    hostname: dnsConfig(spec).hostname ?? spec.id,
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, netns],
      cgroupsPath: `${input.cgroupParent ?? '/hangar'}/${spec.id}`,
      resources: machineResources(spec),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

interface DnsConfig {
  hostname?: string;
  nameservers?: string[];
  searches?: string[];
  options?: { name: string; value?: string }[];
}

function dnsConfig(spec: AgentMachineSpec): DnsConfig {
  return (spec.config.dns ?? {}) as DnsConfig;
}

/** /etc/hosts for a machine: loopback, its own addresses under its id (and name). */
export function hostsFile(spec: AgentMachineSpec, network: SpecNetwork): string {
  const names = `${spec.id} ${spec.id}.vm.${spec.app_name}.internal`;
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `${network.ipv6}\t${names}`];
  if (network.ipv4) lines.push(`${network.ipv4}\t${spec.id}`);
  return `${lines.join('\n')}\n`;
}

/** /etc/resolv.conf: `config.dns` wins over the host network's DNS server. */
export function resolvConf(spec: AgentMachineSpec, dnsServer: string | undefined): string {
  const dns = dnsConfig(spec);
  const servers = dns.nameservers && dns.nameservers.length > 0 ? dns.nameservers : dnsServer ? [dnsServer] : [];
  const lines = servers.map((s) => `nameserver ${s}`);
  if (dns.searches && dns.searches.length > 0) lines.push(`search ${dns.searches.join(' ')}`);
  const options = (dns.options ?? []).map((o) => (o.value ? `${o.name}:${o.value}` : o.name));
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
