/**
 * 6PN-looking private addresses for fake machines: `fdaa:<org hi>:<org lo>:<host>:<m1>:<m2>:<m3>:2`,
 * shaped like Fly's `fdaa:0:3ec2:a7b:5bd4:9fa:e7b7:2`. The first 48 bits are the organization's
 * prefix (so machines of one org share a /48, as on Fly), the next group names the host, and the
 * machine part is hashed from the machine id, so an id always gets the same address on a host (which
 * keeps recovery and tests deterministic). A collision on the host bumps the last hashed group.
 * @module
 */
import { createHash } from 'node:crypto';

function hashGroups(text: string, count: number): number[] {
  const digest = createHash('sha256').update(text).digest();
  return Array.from({ length: count }, (_, i) => digest.readUInt16BE(i * 2));
}

export function hostGroup(hostId: string): number {
  return hashGroups(`host:${hostId}`, 1)[0]!;
}

/** Allocates the address for `machineId`; `taken` holds addresses already used on this host. */
export function fakePrivateIp(orgId: number, machineId: string, host: number, taken: ReadonlySet<string>): string {
  const [m1, m2, m3] = hashGroups(`machine:${machineId}`, 3) as [number, number, number];
  const prefix = [(orgId >>> 16) & 0xffff, orgId & 0xffff, host, m1, m2].map((g) => g.toString(16));
  for (let bump = 0; bump < 0x10000; bump++) {
    const ip = `fdaa:${prefix.join(':')}:${((m3 + bump) & 0xffff).toString(16)}:2`;
    if (!taken.has(ip)) return ip;
  }
  throw new Error('no free fake private address on this host');
}
