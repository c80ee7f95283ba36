/**
 * nftables scripts (pure string builders) for the host network's two tables:
 *
 * - `table bridge <t>`: isolation at L2, where traffic between machines on one bridge actually
 *   flows (it is bridged, never routed, so an `inet` forward chain would not see it without
 *   br_netfilter). Chains: `prerouting` → `from_machine` (anti-spoofing: a port may only send from
 *   its own IPv4/IPv6, no router advertisements or DHCP-server replies), `forward` (a vmap from the
 *   ingress port to its org's chain `org_<n>`, which accepts only egress ports in set `o<n>_ports`;
 *   anything else between our ports is dropped, including broadcasts/ARP across orgs) and `input`
 *   (what a machine may send to the host itself: the gateway addresses, link-local and NDP; and,
 *   with egress on, IPv4 outside the machine subnet).
 * - `table inet <t>`: the host side. `input` limits machines to DNS, ICMP and replies on the host;
 *   with egress on, `forward` lets the bridge out and `postrouting` masquerades it.
 *
 * Every chain is ours and scoped to our ports/bridge by name; nothing touches other tables.
 * @module
 */

export interface NftContext {
  table: string;
  bridge: string;
  ipv4Cidr: string;
  gateway4: string;
  gateway6: string;
  network6: string;
  allowEgress: boolean;
}

export interface PortElement {
  vethName: string;
  orgId: number;
  ipv4: string;
  ipv6: string;
}

const q = (s: string) => JSON.stringify(s);

/** Creates (or re-creates) the org chain and its port set; idempotent. */
export function orgChainScript(t: string, orgId: number): string {
  return [
    `add set bridge ${t} o${orgId}_ports { type ifname; }`,
    `add chain bridge ${t} org_${orgId}`,
    `flush chain bridge ${t} org_${orgId}`,
    `add rule bridge ${t} org_${orgId} oifname @o${orgId}_ports accept`,
    `add rule bridge ${t} org_${orgId} drop`,
  ].join('\n');
}

export function portElementsScript(t: string, verb: 'add' | 'delete', p: PortElement): string {
  const mapValue = verb === 'add' ? ` : jump org_${p.orgId}` : '';
  return [
    `${verb} element bridge ${t} ports { ${q(p.vethName)} }`,
    `${verb} element bridge ${t} o${p.orgId}_ports { ${q(p.vethName)} }`,
    `${verb} element bridge ${t} port_org { ${q(p.vethName)}${mapValue} }`,
    `${verb} element bridge ${t} addr4 { ${q(p.vethName)} . ${p.ipv4} }`,
    `${verb} element bridge ${t} addr6 { ${q(p.vethName)} . ${p.ipv6} }`,
  ].join('\n');
}

/** Removes a port's elements without failing when some are already gone (add, then delete). */
export function removePortScript(t: string, p: PortElement): string {
  return [
    `add set bridge ${t} o${p.orgId}_ports { type ifname; }`,
    `add chain bridge ${t} org_${p.orgId}`,
    portElementsScript(t, 'add', p),
    portElementsScript(t, 'delete', p),
  ].join('\n');
}

/**
 * The whole bridge table, rebuilt atomically (one transaction: create, delete, define) with the
 * elements of `ports`. Used by setup and recover.
 */
export function bridgeTableScript(c: NftContext, ports: PortElement[]): string {
  const t = c.table;
  const orgs = [...new Set(ports.map((p) => p.orgId))].sort((a, b) => a - b);
  const egress = c.allowEgress
    ? [`ip daddr ${c.ipv4Cidr} drop`, 'ether type ip return']
    : [];
  return [
    `add table bridge ${t}`,
    `delete table bridge ${t}`,
    `add table bridge ${t}`,
    `add set bridge ${t} ports { type ifname; }`,
    `add map bridge ${t} port_org { type ifname : verdict; }`,
    `add set bridge ${t} addr4 { type ifname . ipv4_addr; }`,
    `add set bridge ${t} addr6 { type ifname . ipv6_addr; }`,
    ...orgs.map((o) => orgChainScript(t, o)),
    `add chain bridge ${t} from_machine`,
    `add rule bridge ${t} from_machine ether type ip udp sport 67 drop`,
    `add rule bridge ${t} from_machine ether type ip iifname . ip saddr @addr4 return`,
    `add rule bridge ${t} from_machine ether type arp iifname . arp saddr ip @addr4 return`,
    `add rule bridge ${t} from_machine ether type arp arp saddr ip 0.0.0.0 return`,
    `add rule bridge ${t} from_machine ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop`,
    `add rule bridge ${t} from_machine ether type ip6 ip6 saddr { ::, fe80::/10 } return`,
    `add rule bridge ${t} from_machine ether type ip6 iifname . ip6 saddr @addr6 return`,
    `add rule bridge ${t} from_machine drop`,
    `add chain bridge ${t} prerouting { type filter hook prerouting priority -200; policy accept; }`,
    `add rule bridge ${t} prerouting iifname @ports jump from_machine`,
    `add chain bridge ${t} forward { type filter hook forward priority -200; policy accept; }`,
    `add rule bridge ${t} forward iifname vmap @port_org`,
    `add rule bridge ${t} forward oifname @ports drop`,
    `add chain bridge ${t} input { type filter hook input priority -200; policy accept; }`,
    `add rule bridge ${t} input iifname != @ports return`,
    `add rule bridge ${t} input ether type arp return`,
    `add rule bridge ${t} input ip daddr ${c.gateway4} return`,
    `add rule bridge ${t} input ip6 daddr { ${c.gateway6}, fe80::/10, ff02::/16 } return`,
    ...egress.map((r) => `add rule bridge ${t} input ${r}`),
    `add rule bridge ${t} input drop`,
    ...ports.map((p) => portElementsScript(t, 'add', p)),
    '',
  ].join('\n');
}

/** The inet table, replaced atomically (it holds no per-machine state). */
export function inetTableScript(c: NftContext): string {
  const t = c.table;
  const br = q(c.bridge);
  const lines = [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `add table inet ${t}`,
    `add chain inet ${t} from_machines`,
    `add rule inet ${t} from_machines ct state established,related accept`,
    `add rule inet ${t} from_machines meta l4proto { icmp, ipv6-icmp } accept`,
    `add rule inet ${t} from_machines ip daddr ${c.gateway4} meta l4proto { tcp, udp } th dport 53 accept`,
    `add rule inet ${t} from_machines ip6 daddr ${c.gateway6} meta l4proto { tcp, udp } th dport 53 accept`,
    `add rule inet ${t} from_machines drop`,
    `add chain inet ${t} input { type filter hook input priority 0; policy accept; }`,
    `add rule inet ${t} input iifname ${br} jump from_machines`,
    `add chain inet ${t} forward { type filter hook forward priority 0; policy accept; }`,
  ];
  if (c.allowEgress) {
    lines.push(
      `add rule inet ${t} forward iifname ${br} oifname != ${br} ip saddr ${c.ipv4Cidr} accept`,
      `add rule inet ${t} forward iifname ${br} oifname != ${br} drop`,
      `add chain inet ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
      `add rule inet ${t} postrouting ip saddr ${c.ipv4Cidr} oifname != ${br} masquerade`,
    );
  } else {
    lines.push(`add rule inet ${t} forward iifname ${br} oifname != ${br} drop`);
  }
  lines.push('');
  return lines.join('\n');
}

export function deleteTablesScript(t: string): string {
  return [`add table bridge ${t}`, `delete table bridge ${t}`, `add table inet ${t}`, `delete table inet ${t}`, ''].join('\n');
}
