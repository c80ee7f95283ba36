/**
 * Pure address arithmetic for the machine network: the host's IPv4 service subnet, the 6PN-style
 * IPv6 layout and the interface names derived from a machine id. No I/O; `docs/networking.md`
 * describes the layout.
 *
 * IPv6 (one host network `fdaa:<net>::/32`, `net` = 0 in production like Fly and `orgNetworkCidr`):
 *
 *     fdaa:<net>:<org>:a7b:<host>:<slot hi>:<slot lo>:2
 *     `-- org prefix /48 --'     `-- host /80 --'
 *
 * `org` is the organization id (16 bits), `host` the agent's host index (16 bits), `slot` the
 * per-host allocation number (also the IPv4 offset), so an address is unique on the host and says
 * which org and host it belongs to. The bridge holds `fdaa:<net>::1/32` (the gateway and resolver).
 * @module
 */
import { invalidArgument } from '../../core/errors.js';

export interface Ipv4Subnet {
  /** Network address as a 32-bit unsigned integer. */
  base: number;
  prefix: number;
  /** Number of addresses in the subnet. */
  size: number;
}

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** Parses `a.b.c.d/len` (8 ≤ len ≤ 29; the host bits must be zero). */
export function parseIpv4Cidr(cidr: string): Ipv4Subnet {
  const [addr, len, extra] = cidr.split('/');
  const base = addr === undefined ? undefined : parseIpv4(addr);
  const prefix = len !== undefined && /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (base === undefined || extra !== undefined || !(prefix >= 8 && prefix <= 29)) {
    throw invalidArgument(`ipv4Cidr ${JSON.stringify(cidr)} is not an IPv4 CIDR with a prefix length from 8 to 29; use e.g. 172.30.0.0/16`);
  }
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) {
    throw invalidArgument(`ipv4Cidr ${cidr} has host bits set; use ${formatIpv4(base - (base % size))}/${prefix}`);
  }
  return { base, prefix, size };
}

/** The gateway (bridge) address: the first host address. */
export const gateway4 = (subnet: Ipv4Subnet): string => formatIpv4(subnet.base + 1);

/** Slots are offsets inside the subnet: 2 .. size-2 (0 network, 1 gateway, size-1 broadcast). */
export const firstSlot = 2;
export const lastSlot = (subnet: Ipv4Subnet): number => subnet.size - 2;

export function machineIpv4(subnet: Ipv4Subnet, slot: number): string {
  return formatIpv4(subnet.base + slot);
}

export function slotOfIpv4(subnet: Ipv4Subnet, address: string): number | undefined {
  const value = parseIpv4(address);
  if (value === undefined || value < subnet.base || value >= subnet.base + subnet.size) return undefined;
  return value - subnet.base;
}

const hex = (n: number) => n.toString(16);

export function checkOrgId(orgId: number): void {
  if (!Number.isInteger(orgId) || orgId < 1 || orgId > 0xffff) {
    throw invalidArgument(`orgId ${orgId} is outside 1..65535; the 6PN layout fdaa:<net>:<org>::/48 holds the org id in 16 bits`);
  }
}

export function checkU16(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw invalidArgument(`${name} ${value} is outside 0..65535`);
  }
}

/** `fdaa:<net>::/32`, the whole private network of this host network. */
export const networkPrefix6 = (net: number): string => `fdaa:${hex(net)}::/32`;
export const gateway6 = (net: number): string => `fdaa:${hex(net)}::1`;
/** The organization's prefix, the same as `orgNetworkCidr` in the API server for net 0. */
export const orgPrefix6 = (net: number, orgId: number): string => `fdaa:${hex(net)}:${hex(orgId)}::/48`;

export function machineIpv6(net: number, orgId: number, hostIndex: number, slot: number): string {
  return `fdaa:${hex(net)}:${hex(orgId)}:a7b:${hex(hostIndex)}:${hex(Math.floor(slot / 0x10000))}:${hex(slot % 0x10000)}:2`;
}

/** The /80 that holds one org's machines on one host (on-link inside the machine). */
export const hostOrgPrefix6 = (net: number, orgId: number, hostIndex: number): string =>
  `fdaa:${hex(net)}:${hex(orgId)}:a7b:${hex(hostIndex)}::/80`;

export const MACHINE_ID_RE = /^[0-9a-z][0-9a-z_-]{0,47}$/;

export function checkMachineId(machineId: string): void {
  if (!MACHINE_ID_RE.test(machineId)) {
    throw invalidArgument(`machine id ${JSON.stringify(machineId)} cannot name a network namespace; ids are lowercase letters, digits, '-' and '_' (Hangar ids are 14 hex characters)`);
  }
}

/** Host-side veth name: `hv` + the first 12 characters of the id (IFNAMSIZ allows 15). */
export const defaultVethName = (machineId: string): string => `hv${machineId.slice(0, 12)}`;
/** Fallback when two ids share their first 12 characters: derived from the unique slot. */
export const slotVethName = (slot: number): string => `hx${slot.toString(16).padStart(8, '0')}`;
