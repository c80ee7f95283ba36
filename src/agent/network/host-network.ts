/**
 * The host side of machine networking: one Linux bridge, a network namespace + veth pair per
 * machine with a private IPv6 (6PN-style, per organization) and an IPv4 service address,
 * nftables isolation between organizations, and the `.internal` DNS server. `docs/networking.md`
 * explains the address layout, the isolation rules and the measured costs.
 *
 * Concurrency: `attach`/`detach`/`release` are serialized per machine and may run in parallel
 * for different machines; `setup` and `recover` run once at agent start, before any attach.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { HangarError, invalidArgument } from '../../core/errors.js';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import type { Logger } from '../../core/logger.js';
import {
  type Ipv4Subnet, checkMachineId, checkOrgId, checkU16, gateway4 as gateway4Of, gateway6 as gateway6Of, lastSlot,
  machineIpv4, machineIpv6, networkPrefix6, parseIpv4Cidr, slotOfIpv4,
} from './addressing.js';
import { type Allocation, AllocationStore } from './allocations.js';
import { ipv6Bytes } from './dns-wire.js';
import { run } from './exec.js';
import { InternalDns } from './internal-dns.js';
import { type NftContext, type PortElement, bridgeTableScript, deleteTablesScript, inetTableScript, orgChainScript, portElementsScript, removePortScript } from './nft.js';

export interface MachineNetwork {
  netnsName: string;
  netnsPath: string; // /var/run/netns/<name>
  ipv6: string;
  ipv4: string;
  gateway6: string;
  gateway4: string;
  /** The `.internal` resolver for /etc/resolv.conf (the IPv6 gateway, like Fly's fdaa::3). */
  dnsServer: string;
  /** Both resolver addresses, IPv6 first. */
  dnsServers: string[];
  vethName: string;
}

export interface HostNetworkOptions {
  logger: Logger;
  stateDir: string;
  /** This host's number in the 6PN layout (16 bits). Default 0. */
  hostIndex?: number;
  /** Bridge name (≤ 15 characters). Default `hangar0`. */
  bridge?: string;
  /** IPv4 service subnet; the first host address is the gateway. Default 172.30.0.0/16. */
  ipv4Cidr?: string;
  /** Second group of the 6PN network `fdaa:<net>::/32`. Default 0 (Fly's layout); tests pick another. */
  ipv6Net?: number;
  /** Let machines reach the internet over IPv4 (masquerade, sets net.ipv4.ip_forward=1). Default false. */
  allowEgress?: boolean;
  /** Prefix of the network namespace names. Default `hm-`. */
  netnsPrefix?: string;
  /** Name of our nftables tables (`table bridge <t>` and `table inet <t>`). Default `hangar` for the default bridge, else `hangar_<bridge>`. */
  nftTable?: string;
  /** Port of the DNS server. Default 53. */
  dnsPort?: number;
}

export interface AttachRequest {
  machineId: string;
  orgId: number;
  appName: string;
}

const NETNS_DIR = '/var/run/netns';
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const SETUP_FIX = 'run `hangar host setup` (iproute2, nftables) and run the agent as root';

export class HostNetwork {
  readonly bridge: string;
  readonly table: string;
  readonly gateway4: string;
  readonly gateway6: string;
  readonly dns: InternalDns;
  private readonly logger: Logger;
  private readonly subnet: Ipv4Subnet;
  private readonly ipv4Cidr: string;
  private readonly hostIndex: number;
  private readonly ipv6Net: number;
  private readonly allowEgress: boolean;
  private readonly netnsPrefix: string;
  private readonly dnsPort: number;
  private readonly allocations: AllocationStore;
  private readonly mutex = new KeyedMutex();
  private readonly orgChains = new Set<number>();
  private dnsListening = false;

  constructor(options: HostNetworkOptions) {
    this.logger = options.logger.child({ component: 'network' });
    this.bridge = options.bridge ?? 'hangar0';
    if (!IFNAME_RE.test(this.bridge)) throw invalidArgument(`bridge name ${JSON.stringify(this.bridge)} must be 1-15 characters of letters, digits, '_', '.', '-'`);
    this.table = options.nftTable ?? (this.bridge === 'hangar0' ? 'hangar' : `hangar_${this.bridge.replace(/[^A-Za-z0-9_]/g, '_')}`);
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(this.table)) throw invalidArgument(`nftTable ${JSON.stringify(this.table)} must be a letter followed by letters, digits or '_'`);
    this.ipv4Cidr = options.ipv4Cidr ?? '172.30.0.0/16';
    this.subnet = parseIpv4Cidr(this.ipv4Cidr);
    this.hostIndex = options.hostIndex ?? 0;
    checkU16('hostIndex', this.hostIndex);
    this.ipv6Net = options.ipv6Net ?? 0;
    checkU16('ipv6Net', this.ipv6Net);
    this.allowEgress = options.allowEgress ?? false;
    this.netnsPrefix = options.netnsPrefix ?? 'hm-';
    if (!/^[a-z][a-z0-9-]{0,15}$/.test(this.netnsPrefix)) throw invalidArgument(`netnsPrefix ${JSON.stringify(this.netnsPrefix)} must be lowercase letters, digits or '-'`);
    this.dnsPort = options.dnsPort ?? 53;
    this.gateway4 = gateway4Of(this.subnet);
    this.gateway6 = gateway6Of(this.ipv6Net);
    this.allocations = new AllocationStore(options.stateDir, lastSlot(this.subnet));
    this.dns = new InternalDns({ logger: this.logger, orgOf: (address) => this.orgOfAddress(address) });
  }

  // ---- host level ---------------------------------------------------------------------------

  /** Bridge, gateway addresses, sysctls, nftables tables and the DNS server; idempotent. */
  async setup(): Promise<void> {
    const started = performance.now();
    const br = this.bridge;
    const lines: string[] = [];
    if (!existsSync(`/sys/class/net/${br}`)) {
      // A fixed MAC: otherwise the bridge takes the lowest port MAC and changes it as ports come
      // and go, which would leave machines with a stale ARP/neighbor entry for the gateway.
      lines.push(`link add ${br} address ${this.bridgeMac()} type bridge stp_state 0 forward_delay 0`);
    }
    lines.push(`addr replace ${this.gateway4}/${this.subnet.prefix} dev ${br}`);
    await run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n`, fix: SETUP_FIX });
    // The bridge must have IPv6 enabled and must never learn routes from a machine's router advertisement.
    this.sysctl(`net/ipv6/conf/${br}/disable_ipv6`, '0');
    this.sysctl(`net/ipv6/conf/${br}/accept_ra`, '0');
    await run('ip', ['-batch', '-'], {
      input: `addr replace ${this.gateway6}/32 dev ${br} nodad\nlink set ${br} up\n`,
      fix: SETUP_FIX,
    });
    // Routing to the internet is only needed (and only enabled) when machines may egress.
    if (this.allowEgress) this.sysctl('net/ipv4/ip_forward', '1');
    await this.applyNft(this.liveAllocations());
    if (!this.dnsListening) {
      await this.dns.listen([this.gateway6, this.gateway4], this.dnsPort);
      this.dnsListening = true;
    }
    this.logger.info('host network ready', { bridge: br, gateway4: this.gateway4, gateway6: this.gateway6, ms: Math.round(performance.now() - started) });
  }

  /** Stops the DNS server; the bridge, tables and machine namespaces stay (host-level state). */
  async close(): Promise<void> {
    await this.dns.close();
    this.dnsListening = false;
  }

  /**
   * Removes everything this host network created, bridge and tables included (tests, uninstall).
   * Namespaces of machines still allocated are removed too.
   */
  async destroyHostLevel(): Promise<void> {
    await this.close();
    for (const a of this.allocations.all()) await this.release(a.machineId);
    await this.recover(new Set());
    const input = `${existsSync(`/sys/class/net/${this.bridge}`) ? `link del ${this.bridge}\n` : ''}`;
    if (input) await run('ip', ['-batch', '-'], { input });
    await run('nft', ['-f', '-'], { input: deleteTablesScript(this.table) });
  }

  // ---- per machine --------------------------------------------------------------------------

  /** Creates (or completes) the machine's namespace, veth and addresses; idempotent. */
  attach(m: AttachRequest): Promise<MachineNetwork> {
    checkMachineId(m.machineId);
    checkOrgId(m.orgId);
    return this.mutex.run(m.machineId, async () => {
      const a = this.allocations.allocate(m);
      const net = this.describe(a);
      const port = this.portOf(a);
      const hostLines: string[] = [];
      const hasNetns = existsSync(net.netnsPath);
      let hasVeth = existsSync(`/sys/class/net/${a.vethName}`);
      if (!hasNetns && hasVeth) {
        // A leftover whose namespace is gone (or still being destroyed by the kernel): replace it.
        hostLines.push(`link del ${a.vethName}`);
        hasVeth = false;
      }
      if (!hasNetns) hostLines.push(`netns add ${net.netnsName}`);
      // eth0 gets a MAC fixed by the slot: a machine that gave up its veth (stopped, bridge near
      // full) and attaches again keeps its MAC, so neighbour entries the host and other machines
      // still hold for its address stay right (a new random MAC would leave them stale for ~5 s).
      if (!hasVeth) hostLines.push(`link add ${a.vethName} type veth peer name eth0 address ${this.machineMac(a.slot)} netns ${net.netnsName}`);
      hostLines.push(`link set ${a.vethName} master ${this.bridge} up`);
      let nftScript = portElementsScript(this.table, 'add', port);
      if (!this.orgChains.has(a.orgId)) nftScript = `${orgChainScript(this.table, a.orgId)}\n${nftScript}`;
      // nft runs alongside the ip commands: until its elements exist the port is dropped by the
      // forward chain, and nothing runs in the namespace before attach returns.
      const nft = run('nft', ['-f', '-'], { input: `${nftScript}\n`, fix: `check that setup() ran (table bridge ${this.table}) and nftables is installed` });
      try {
        await run('ip', ['-batch', '-'], { input: `${hostLines.join('\n')}\n`, fix: `check that setup() ran (bridge ${this.bridge}) and no stale interface ${a.vethName} exists elsewhere` });
        const prefix4 = this.subnet.prefix;
        await run('ip', ['-n', net.netnsName, '-batch', '-'], {
          input: [
            'link set lo up',
            `addr replace ${net.ipv4}/${prefix4} dev eth0`,
            `addr replace ${net.ipv6}/80 dev eth0 nodad`,
            'link set eth0 up',
            `route replace default via ${net.gateway4} dev eth0`,
            `route replace ${net.gateway6}/128 dev eth0`,
            `route replace ::/0 via ${net.gateway6} dev eth0`,
            '',
          ].join('\n'),
          fix: `the namespace ${net.netnsName} may be half-built; detach(${m.machineId}) and attach again`,
        });
      } finally {
        await nft.catch(() => undefined);
      }
      await nft.catch((err: unknown) => {
        throw new HangarError('unknown', `network: attaching machine ${m.machineId} (org ${m.orgId}): ${(err as Error).message}`, { cause: err });
      });
      this.orgChains.add(a.orgId);
      return net;
    }).catch((err: unknown) => {
      if (err instanceof HangarError && err.message.includes(m.machineId)) throw err;
      if (err instanceof HangarError) throw new HangarError(err.code, `network: attaching machine ${m.machineId}: ${err.message.replace(/^network: /, '')}`, { cause: err });
      throw err;
    });
  }

  /** Removes the machine's veth and namespace and its DNS records; keeps its addresses reserved. Idempotent. */
  detach(machineId: string): Promise<void> {
    checkMachineId(machineId);
    return this.mutex.run(machineId, () => this.teardown(machineId));
  }

  /** `detach` plus freeing the machine's addresses (call when the machine is destroyed). Idempotent. */
  release(machineId: string): Promise<void> {
    checkMachineId(machineId);
    return this.mutex.run(machineId, async () => {
      await this.teardown(machineId);
      this.allocations.release(machineId);
    });
  }

  /** The network of an allocated machine (attached or not), without touching the host. */
  get(machineId: string): MachineNetwork | undefined {
    const a = this.allocations.get(machineId);
    return a && this.describe(a);
  }

  /**
   * After a crash: detaches and releases machines not in `known`, deletes our namespaces and
   * bridge ports that belong to no known machine, and rebuilds the nftables elements from the
   * machines that remain.
   */
  async recover(known: Set<string>): Promise<{ removed: string[] }> {
    const removed = new Set<string>();
    for (const a of this.allocations.all()) {
      if (!known.has(a.machineId)) {
        await this.release(a.machineId);
        removed.add(a.machineId);
      }
    }
    const keepVeths = new Set(this.allocations.all().map((a) => a.vethName));
    const lines: string[] = [];
    for (const port of listDir(`/sys/class/net/${this.bridge}/brif`)) {
      if (!keepVeths.has(port)) lines.push(`link del ${port}`);
    }
    for (const ns of listDir(NETNS_DIR)) {
      if (!ns.startsWith(this.netnsPrefix)) continue;
      const id = ns.slice(this.netnsPrefix.length);
      if (!known.has(id)) {
        lines.push(`netns del ${ns}`);
        removed.add(id);
      }
    }
    if (lines.length) await run('ip', ['-force', '-batch', '-'], { input: `${lines.join('\n')}\n` }).catch((err: unknown) => this.logger.warn('recover: some orphans could not be removed', { error: (err as Error).message }));
    if (existsSync(`/sys/class/net/${this.bridge}`)) await this.applyNft(this.liveAllocations());
    if (removed.size) this.logger.info('removed orphaned machine networks', { machines: [...removed] });
    return { removed: [...removed] };
  }

  // ---- internals ----------------------------------------------------------------------------

  private async teardown(machineId: string): Promise<void> {
    this.dns.unregister(machineId);
    const a = this.allocations.get(machineId);
    const netnsName = this.netnsPrefix + machineId;
    const lines: string[] = [];
    if (a && existsSync(`/sys/class/net/${a.vethName}`)) lines.push(`link del ${a.vethName}`);
    if (existsSync(`${NETNS_DIR}/${netnsName}`)) lines.push(`netns del ${netnsName}`);
    const tasks: Promise<unknown>[] = [];
    if (lines.length) {
      tasks.push(run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n`, fix: `remove it by hand: ip link del ${a?.vethName ?? '<veth>'}; ip netns del ${netnsName}` }));
    }
    if (a) {
      tasks.push(run('nft', ['-f', '-'], { input: `${removePortScript(this.table, this.portOf(a))}\n`, fix: `check table bridge ${this.table} (nft list table bridge ${this.table})` }));
    }
    const results = await Promise.allSettled(tasks);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      const err = failed.reason as Error;
      throw new HangarError(err instanceof HangarError ? err.code : 'unknown', `network: detaching machine ${machineId}: ${err.message.replace(/^network: /, '')}`, { cause: err });
    }
  }

  private async applyNft(ports: PortElement[]): Promise<void> {
    const ctx: NftContext = {
      table: this.table, bridge: this.bridge, ipv4Cidr: this.ipv4Cidr, gateway4: this.gateway4,
      gateway6: this.gateway6, network6: networkPrefix6(this.ipv6Net), allowEgress: this.allowEgress,
    };
    await run('nft', ['-f', '-'], { input: bridgeTableScript(ctx, ports) + inetTableScript(ctx), fix: 'nftables with bridge-family support (CONFIG_NF_TABLES_BRIDGE) is needed; run `hangar host setup`' });
    this.orgChains.clear();
    for (const p of ports) this.orgChains.add(p.orgId);
  }

  /** Allocations whose veth exists: the ports the nftables sets must know about. */
  private liveAllocations(): PortElement[] {
    return this.allocations.all().filter((a) => existsSync(`/sys/class/net/${a.vethName}`)).map((a) => this.portOf(a));
  }

  private portOf(a: Allocation): PortElement {
    return { vethName: a.vethName, orgId: a.orgId, ipv4: machineIpv4(this.subnet, a.slot), ipv6: machineIpv6(this.ipv6Net, a.orgId, this.hostIndex, a.slot) };
  }

  private describe(a: Allocation): MachineNetwork {
    const netnsName = this.netnsPrefix + a.machineId;
    return {
      netnsName,
      netnsPath: `${NETNS_DIR}/${netnsName}`,
      ipv6: machineIpv6(this.ipv6Net, a.orgId, this.hostIndex, a.slot),
      ipv4: machineIpv4(this.subnet, a.slot),
      gateway6: this.gateway6,
      gateway4: this.gateway4,
      dnsServer: this.gateway6,
      dnsServers: [this.gateway6, this.gateway4],
      vethName: a.vethName,
    };
  }

  /** The org of the attached machine that owns `address` (the DNS server's notion of "who asks"). */
  private orgOfAddress(address: string): number | undefined {
    if (isIPv4(address)) {
      const slot = slotOfIpv4(this.subnet, address);
      return slot === undefined ? undefined : this.allocations.bySlotNumber(slot)?.orgId;
    }
    if (!isIPv6(address) || address.includes('.') || address.includes('%')) return undefined;
    const b = ipv6Bytes(address);
    const g = (i: number) => b.readUInt16BE(i * 2);
    if (g(0) !== 0xfdaa || g(1) !== this.ipv6Net || g(3) !== 0xa7b || g(4) !== this.hostIndex || g(7) !== 2) return undefined;
    const a = this.allocations.bySlotNumber(g(5) * 0x10000 + g(6));
    return a && a.orgId === g(2) ? a.orgId : undefined;
  }

  /** Locally administered unicast, unique per bridge and slot: 0a:<bridge hash>:<slot, 32 bits>. */
  private machineMac(slot: number): string {
    const h = createHash('sha256').update(`hangar-bridge:${this.bridge}`).digest();
    return ['0a', h[0]!, slot >>> 24, slot >>> 16, slot >>> 8, slot].map((x) => (typeof x === 'string' ? x : (x & 255).toString(16).padStart(2, '0'))).join(':');
  }

  private bridgeMac(): string {
    const h = createHash('sha256').update(`hangar-bridge:${this.bridge}`).digest();
    return ['02', ...[...h.subarray(0, 5)].map((x) => x.toString(16).padStart(2, '0'))].join(':');
  }

  private sysctl(path: string, value: string): void {
    try {
      writeFileSync(`/proc/sys/${path}`, value);
    } catch (err) {
      throw new HangarError('unknown', `network: cannot set sysctl ${path.replaceAll('/', '.')}=${value}: ${(err as Error).message}; run the agent as root on a host where /proc/sys is writable`, { cause: err });
    }
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
