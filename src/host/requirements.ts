/**
 * What a Hangar host needs, as pure data: each requirement has a probe (reading the host only
 * through `HostProbes`), a fix a person can run by hand, and, when `hangar host setup` can fix it,
 * the actions setup takes. `runner.ts` turns the list into `host check` and `host setup`;
 * `docs/host.md` explains each item. Measured background: shared/reference/host-runtime.md.
 * @module
 */

/** Everything the requirements read from the host; `probes.ts` has the real one, tests fake it. */
export interface HostProbes {
  uid(): number;
  /** File contents, or undefined when it can't be read. */
  readFile(path: string): string | undefined;
  exists(path: string): boolean;
  isCharDevice(path: string): boolean;
  /** Absolute path of a command (PATH plus the sbin directories), or undefined. */
  which(command: string): string | undefined;
  /** Whether this is a dpkg/apt host. */
  hasApt(): boolean;
  /** Installed version of a Debian package, or undefined when not installed. */
  packageVersion(pkg: string): string | undefined;
}

/** One thing setup does; `display` is the shell equivalent printed before it runs. */
export type HostAction =
  | { kind: 'exec'; argv: string[]; env?: Record<string, string> }
  | { kind: 'mkdir'; path: string }
  | { kind: 'write'; path: string; content: string; display: string };

export type Level = 'required' | 'optional' | 'info';

export interface ProbeResult {
  ok: boolean;
  detail: string;
  /** For optional items: false when this host can't have it at all (setup skips it quietly). */
  available?: boolean;
}

export interface Requirement {
  id: string;
  title: string;
  level: Level;
  probe(p: HostProbes): ProbeResult;
  /** How to fix it by hand (shown by `host check`). */
  fix: string;
  /** Debian package: setup batches every missing one into one `apt-get install`. */
  aptPackage?: string;
  /** What setup does when the probe fails; absent when setup can't fix it. */
  plan?(p: HostProbes, result: ProbeResult): HostAction[];
}

export function actionDisplay(action: HostAction): string {
  switch (action.kind) {
    case 'exec':
      return [...Object.entries(action.env ?? {}).map(([k, v]) => `${k}=${v}`), ...action.argv].join(' ');
    case 'mkdir':
      return `mkdir -p ${action.path}`;
    case 'write':
      return action.display;
  }
}

// ---------------------------------------------------------------------------------------------
// Packages

/** The Debian packages a host needs, with the binary that proves each is there and why. */
export const HOST_PACKAGES: readonly { pkg: string; binary: string; why: string }[] = [
  { pkg: 'crun', binary: 'crun', why: 'the OCI runtime that runs machines (default driver)' },
  { pkg: 'runc', binary: 'runc', why: 'fallback OCI runtime' },
  { pkg: 'skopeo', binary: 'skopeo', why: 'copies images between registries, archives and layouts' },
  { pkg: 'umoci', binary: 'umoci', why: 'unpacks OCI images into root filesystems' },
  { pkg: 'docker-registry', binary: 'docker-registry', why: 'a local OCI registry (tests and private images)' },
  { pkg: 'busybox-static', binary: '/bin/busybox', why: 'static busybox for test images, in-machine helpers and the overlay mount in each machine start' },
  { pkg: 'nftables', binary: 'nft', why: 'published ports (DNAT) and isolation between organizations' },
  { pkg: 'iproute2', binary: 'ip', why: 'the bridge, veth pairs and per-machine network namespaces' },
  { pkg: 'tini', binary: 'tini-static', why: 'a tiny init for machines: reaps zombies, forwards signals' },
  { pkg: 'e2fsprogs', binary: 'mkfs.ext4', why: 'ext4 filesystems for volumes and microVM disks' },
];

export const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

/** The apt-get commands that install `packages` (update first: a fresh host has no package lists). */
export function aptInstallActions(packages: string[]): HostAction[] {
  if (packages.length === 0) return [];
  return [
    { kind: 'exec', argv: ['apt-get', 'update', '-q'], env: APT_ENV },
    { kind: 'exec', argv: ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...packages], env: APT_ENV },
  ];
}

function packageRequirement({ pkg, binary, why }: (typeof HOST_PACKAGES)[number]): Requirement {
  return {
    id: `package:${pkg}`,
    title: `package ${pkg}`,
    level: 'required',
    aptPackage: pkg,
    fix: `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkg}`,
    probe(p) {
      const path = binary.startsWith('/') ? (p.exists(binary) ? binary : undefined) : p.which(binary);
      if (!p.hasApt()) {
        return path
          ? { ok: true, detail: `${path} (${why})` }
          : { ok: false, detail: `${binary} not found; install ${pkg} with this host's package manager (${why})` };
      }
      const version = p.packageVersion(pkg);
      if (version && path) return { ok: true, detail: `${version}, ${path}` };
      if (version) return { ok: false, detail: `${pkg} ${version} is installed but ${binary} is missing; reinstall it` };
      if (path) return { ok: false, detail: `${path} exists but the Debian package ${pkg} is not installed (${why})` };
      return { ok: false, detail: `not installed (${why})` };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// cgroups

export const UNIFIED_CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';

/** Controllers the cgroup2 mount of a hybrid host still owns ([] when none, or not hybrid). */
export function hybridV2Controllers(p: HostProbes): string[] {
  return (p.readFile(UNIFIED_CONTROLLERS) ?? '').split(/\s+/).filter(Boolean);
}

/** Mount points of cgroup v1 hierarchies, from /proc/self/mountinfo. */
export function cgroupV1MountPoints(p: HostProbes): Set<string> {
  const points = new Set<string>();
  for (const line of (p.readFile('/proc/self/mountinfo') ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.startsWith('cgroup ')) {
      const mountPoint = left?.split(' ')[4];
      if (mountPoint) points.add(mountPoint);
    }
  }
  return points;
}

/**
 * Hybrid-cgroup hosts (cgroup v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified) where
 * cgroup2 still owns a controller: crun 1.8 refuses to run anything there ("cgroups in hybrid
 * mode not supported, drop all controllers from cgroupv2"), and `--cgroup-manager=disabled` does not
 * help. On a fresh machine of our kind the leftover controller is hugetlb. Binding it to a v1
 * hierarchy leaves cgroup2 with no controllers, and crun works. runc doesn't care either way.
 */
const cgroupRequirement: Requirement = {
  id: 'cgroup-hybrid',
  title: 'cgroup2 controllers freed (crun)',
  level: 'required',
  fix: 'mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb (one per controller listed in /sys/fs/cgroup/unified/cgroup.controllers)',
  probe(p) {
    if (!p.exists(UNIFIED_CONTROLLERS)) {
      return { ok: true, detail: p.exists('/sys/fs/cgroup/cgroup.controllers') ? 'pure cgroup v2 host: nothing to fix' : 'no hybrid cgroup2 mount: nothing to fix' };
    }
    const controllers = hybridV2Controllers(p);
    if (controllers.length === 0) return { ok: true, detail: 'hybrid cgroups; the cgroup2 mount owns no controllers' };
    return { ok: false, detail: `hybrid cgroups and cgroup2 still owns ${controllers.join(', ')}: crun refuses to run ("cgroups in hybrid mode not supported")` };
  },
  plan(p) {
    const mounted = cgroupV1MountPoints(p);
    return hybridV2Controllers(p).flatMap((controller): HostAction[] => {
      const dir = `/sys/fs/cgroup/${controller}`;
      if (mounted.has(dir)) return []; // mounted already (by a concurrent setup): nothing more to do
      return [{ kind: 'mkdir', path: dir }, { kind: 'exec', argv: ['mount', '-t', 'cgroup', '-o', controller, 'cgroup', dir] }];
    });
  },
};

// ---------------------------------------------------------------------------------------------
// sysctls

export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

function sysctlRequirement(key: string, value: string, why: string): Requirement {
  return {
    id: `sysctl:${key}`,
    title: `sysctl ${key}=${value}`,
    level: 'required',
    fix: `sysctl -w ${key}=${value}`,
    probe(p) {
      const current = p.readFile(sysctlPath(key))?.trim();
      if (current === undefined) return { ok: false, detail: `${sysctlPath(key)} is missing (kernel without this setting?); ${why}` };
      return current === value ? { ok: true, detail: why } : { ok: false, detail: `is ${current}; ${why}` };
    },
    plan: () => [{ kind: 'write', path: sysctlPath(key), content: `${value}\n`, display: `sysctl -w ${key}=${value}` }],
  };
}

/**
 * The kernel keeps one neighbour (ARP / NDP) table per address family for the whole host, shared
 * by every network namespace, and refuses new entries above gc_thresh3 (default 1,024; "neighbour
 * table overflow", counted in /proc/net/stat/{arp,ndisc}_cache table_fulls). Each machine adds
 * entries in both tables (the host's for the machine, the machine's for its gateway, peers), so a
 * host with ~500+ machines runs out: the first packets to a machine that just started are dropped
 * until an entry can be made, and a connection waits for its SYN retransmission (1-2 s). Setup
 * raises the three thresholds of each family, never lowers a host's larger values.
 */
const NEIGH_THRESHOLDS: [string, number][] = [['gc_thresh1', 2048], ['gc_thresh2', 8192], ['gc_thresh3', 16384]];

function neighbourTableRequirement(family: 'ipv4' | 'ipv6'): Requirement {
  const keys = NEIGH_THRESHOLDS.map(([name, min]) => [`net.${family}.neigh.default.${name}`, min] as const);
  const low = (p: HostProbes) => keys.filter(([key, min]) => !(Number(p.readFile(sysctlPath(key))?.trim()) >= min));
  return {
    id: `sysctl:net.${family}.neigh.default.gc_thresh`,
    title: `${family} neighbour table holds ${NEIGH_THRESHOLDS.at(-1)![1]} entries`,
    level: 'required',
    fix: keys.map(([key, min]) => `sysctl -w ${key}=${min}`).join('; '),
    probe(p) {
      const missing = low(p);
      const why = 'one table for all machines; the default 1,024 overflows at a few hundred machines and delays their first packets by 1-2 s';
      return missing.length === 0
        ? { ok: true, detail: why }
        : { ok: false, detail: `${missing.map(([key]) => `${key.split('.').at(-1)}=${p.readFile(sysctlPath(key))?.trim() ?? 'missing'}`).join(', ')}; ${why}` };
    },
    plan: (p) => low(p).map(([key, min]): HostAction => ({ kind: 'write', path: sysctlPath(key), content: `${min}\n`, display: `sysctl -w ${key}=${min}` })),
  };
}

/** RTF_DEFAULT | RTF_ADDRCONF in /proc/net/ipv6_route: a default route learned from a router advertisement. */
const RA_DEFAULT_ROUTE = 0x00010000 | 0x00040000;

/** Interfaces whose IPv6 default route came from router advertisements (from /proc/net/ipv6_route). */
export function raDefaultRouteInterfaces(p: HostProbes): string[] {
  const devices = new Set<string>();
  for (const line of (p.readFile('/proc/net/ipv6_route') ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[0] !== '0'.repeat(32) || f[1] !== '00') continue;
    if ((parseInt(f[8]!, 16) & RA_DEFAULT_ROUTE) === RA_DEFAULT_ROUTE) devices.add(f[9]!);
  }
  return [...devices].filter((dev) => p.readFile(`/proc/sys/net/ipv6/conf/${dev}/accept_ra`)?.trim() === '1');
}

/**
 * Turning on IPv6 forwarding makes the kernel ignore router advertisements on interfaces with
 * accept_ra=1, so a host whose own IPv6 default route comes from RAs would lose it when the route
 * expires. accept_ra=2 keeps accepting them while forwarding. This step runs before the
 * forwarding sysctl and does nothing on hosts with static IPv6 routes (like our CI machines).
 */
const keepRaRequirement: Requirement = {
  id: 'ipv6-accept-ra',
  title: 'IPv6 uplink keeps its RA route',
  level: 'required',
  fix: 'sysctl -w net.ipv6.conf.<uplink>.accept_ra=2 for each interface whose IPv6 default route comes from router advertisements',
  probe(p) {
    const devices = raDefaultRouteInterfaces(p);
    return devices.length === 0
      ? { ok: true, detail: 'no IPv6 default route learned from router advertisements with accept_ra=1' }
      : { ok: false, detail: `the IPv6 default route via ${devices.join(', ')} comes from router advertisements, which IPv6 forwarding would stop accepting` };
  },
  plan: (p) =>
    raDefaultRouteInterfaces(p).map((dev): HostAction => ({
      kind: 'write', path: `/proc/sys/net/ipv6/conf/${dev}/accept_ra`, content: '2\n', display: `sysctl -w net.ipv6.conf.${dev}.accept_ra=2`,
    })),
};

const SYSCTLS: Requirement[] = [
  keepRaRequirement,
  // Machines live on a bridge behind the host. Traffic between the bridge and anything else (the
  // proxy's DNAT from other interfaces or namespaces, machines on other hosts) is routed by the
  // host, which the kernel only does with forwarding on. The network module keeps a default-drop
  // nftables forward policy, so this doesn't turn the host into an open router.
  sysctlRequirement('net.ipv4.ip_forward', '1', 'routes IPv4 between the machine bridge and the host'),
  // The same for the private IPv6 network between machines (6PN-style fdaa::/16 addresses). Note:
  // with forwarding on, the kernel ignores router advertisements on interfaces with accept_ra=1; a
  // host whose own IPv6 default route comes from RAs needs accept_ra=2 on that interface.
  sysctlRequirement('net.ipv6.conf.all.forwarding', '1', 'routes the private IPv6 network between machines'),
  // Published ports answer on 127.0.0.1 too: nftables DNATs 127.0.0.1:PORT to a machine address.
  // The kernel drops packets with a loopback address that leave the lo interface ("martians")
  // unless route_localnet is on (the masquerade rule then rewrites the source).
  sysctlRequirement('net.ipv4.conf.all.route_localnet', '1', 'lets published ports answer on 127.0.0.1 (DNAT from loopback)'),
  neighbourTableRequirement('ipv4'),
  neighbourTableRequirement('ipv6'),
];

// ---------------------------------------------------------------------------------------------
// br_netfilter (optional)

/**
 * br_netfilter makes frames bridged between two machines on the same bridge pass the IP-level
 * netfilter hooks, so nftables rules can isolate organizations that share a bridge. Without it
 * only routed traffic is filtered. Optional: some kernels (like this project's CI machines') have
 * it built in, others lack it.
 */
const brNetfilterRequirement: Requirement = {
  id: 'br_netfilter',
  title: 'br_netfilter module',
  level: 'optional',
  fix: 'modprobe br_netfilter',
  probe(p) {
    if (p.exists('/proc/sys/net/bridge')) return { ok: true, detail: 'loaded or built in' };
    const release = p.readFile('/proc/sys/kernel/osrelease')?.trim() ?? '';
    const modulesDep = p.readFile(`/lib/modules/${release}/modules.dep`) ?? '';
    const available = /(^|\/)br_netfilter\.ko/m.test(modulesDep) && p.which('modprobe') !== undefined;
    return available
      ? { ok: false, available: true, detail: 'not loaded' }
      : { ok: false, available: false, detail: `not available in kernel ${release || '(unknown)'} (no module, or no modprobe); bridged traffic between machines isn't filtered` };
  },
  plan: (_p, result) => (result.available ? [{ kind: 'exec', argv: ['modprobe', 'br_netfilter'] }] : []),
};

// ---------------------------------------------------------------------------------------------
// root and KVM

const rootRequirement: Requirement = {
  id: 'root',
  title: 'running as root',
  level: 'required',
  fix: 'run Hangar as root (sudo hangar ...): it manages namespaces, cgroups, mounts and nftables, as container engines do',
  probe: (p) => (p.uid() === 0 ? { ok: true, detail: 'uid 0' } : { ok: false, detail: `uid ${p.uid()}` }),
};

export type KvmKind = 'hardware' | 'pvm' | 'other' | 'none';

/**
 * Hardware KVM (vmx/svm in /proc/cpuinfo and kvm_intel or kvm_amd loaded) versus PVM, the
 * software "pagetable-based" KVM of our CI machines, which can't boot stock guest kernels
 * (host-runtime.md §1). The microVM driver uses KVM only for `hardware` and TCG otherwise.
 */
export function detectKvm(p: HostProbes): { kind: KvmKind; detail: string } {
  if (!p.isCharDevice('/dev/kvm')) return { kind: 'none', detail: 'no /dev/kvm: microVMs would run under TCG (software emulation)' };
  const flags = /^flags\s*:(.*)$/m.exec(p.readFile('/proc/cpuinfo') ?? '')?.[1]?.split(/\s+/) ?? [];
  const vendor = p.exists('/sys/module/kvm_intel') ? 'kvm_intel' : p.exists('/sys/module/kvm_amd') ? 'kvm_amd' : undefined;
  if ((flags.includes('vmx') || flags.includes('svm')) && vendor) return { kind: 'hardware', detail: `hardware KVM (${vendor})` };
  if (p.exists('/sys/module/kvm_pvm')) {
    return { kind: 'pvm', detail: '/dev/kvm is PVM (software KVM, kvm_pvm): stock guest kernels cannot boot; microVMs would run under TCG' };
  }
  return { kind: 'other', detail: '/dev/kvm exists but the CPU shows no vmx/svm: nested or unknown KVM; microVMs would run under TCG' };
}

const kvmRequirement: Requirement = {
  id: 'kvm',
  title: 'KVM for microVMs',
  level: 'info',
  fix: 'microVMs need a host with hardware virtualization (vmx/svm) and kvm_intel or kvm_amd loaded',
  probe: (p) => {
    const kvm = detectKvm(p);
    return { ok: kvm.kind === 'hardware', detail: kvm.detail };
  },
};

/** Every requirement, in the order check reports them and setup handles them. */
export const HOST_REQUIREMENTS: readonly Requirement[] = [
  rootRequirement,
  ...HOST_PACKAGES.map(packageRequirement),
  cgroupRequirement,
  ...SYSCTLS,
  brNetfilterRequirement,
  kvmRequirement,
];
