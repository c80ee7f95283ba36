/** Pure parts of the machine network: address layout, allocation store, DNS codec and resolver. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HangarError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { checkOrgId, gateway4, lastSlot, machineIpv4, machineIpv6, orgPrefix6, parseIpv4Cidr, slotOfIpv4 } from './addressing.js';
import { AllocationStore } from './allocations.js';
import { RCODE, TYPE, decodeQuery, decodeResponse, encodeQuery, encodeResponse, ipv6Bytes } from './dns-wire.js';
import { InternalDns } from './internal-dns.js';
import { bridgeTableScript, inetTableScript } from './nft.js';

test('IPv4 subnet arithmetic and the 6PN layout', () => {
  const s = parseIpv4Cidr('172.30.0.0/16');
  assert.equal(gateway4(s), '172.30.0.1');
  assert.equal(lastSlot(s), 65534);
  assert.equal(machineIpv4(s, 2), '172.30.0.2');
  assert.equal(machineIpv4(s, 300), '172.30.1.44');
  assert.equal(slotOfIpv4(s, '172.30.1.44'), 300);
  assert.equal(slotOfIpv4(s, '10.0.0.1'), undefined);
  assert.equal(machineIpv6(0, 0x3ec2, 0x5bd4, 0x9fae7b7), 'fdaa:0:3ec2:a7b:5bd4:9fa:e7b7:2');
  assert.equal(orgPrefix6(0, 0x3ec2), 'fdaa:0:3ec2::/48');
  assert.throws(() => parseIpv4Cidr('172.30.0.1/16'), /host bits/);
  assert.throws(() => parseIpv4Cidr('172.30.0.0/31'), /prefix length/);
  assert.throws(() => checkOrgId(0x10000), /1\.\.65535/);
});

test('allocations are next-fit, stable, persisted atomically and reload identically', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hangar-alloc-'));
  try {
    const store = new AllocationStore(dir, 5); // slots 2..5
    const a = store.allocate({ machineId: 'aaaaaaaaaaaaaa', orgId: 1, appName: 'x' });
    const b = store.allocate({ machineId: 'aaaaaaaaaaaabb', orgId: 1, appName: 'x' }); // same first 12 chars
    assert.deepEqual([a.slot, b.slot], [2, 3]);
    assert.equal(a.vethName, 'hvaaaaaaaaaaaa');
    assert.equal(b.vethName, 'hx00000003', 'veth names stay unique when ids share a prefix');
    assert.equal(store.allocate({ machineId: 'aaaaaaaaaaaaaa', orgId: 1, appName: 'x' }).slot, 2);
    store.release(a.machineId);
    assert.equal(store.allocate({ machineId: 'c', orgId: 2, appName: 'y' }).slot, 4, 'a freed slot is not reused at once');
    store.allocate({ machineId: 'd', orgId: 2, appName: 'y' });
    assert.equal(store.allocate({ machineId: 'e', orgId: 2, appName: 'y' }).slot, 2, 'the cursor wraps');
    assert.throws(() => store.allocate({ machineId: 'f', orgId: 2, appName: 'y' }), (e: unknown) => e instanceof HangarError && e.code === 'insufficient_capacity');
    const reloaded = new AllocationStore(dir, 5);
    assert.deepEqual(reloaded.all().sort((x, y) => x.slot - y.slot), store.all().sort((x, y) => x.slot - y.slot));
    assert.throws(() => new AllocationStore(dir, 3), /shrank/);
    writeFileSync(join(dir, 'network-allocations.json'), '{oops');
    assert.throws(() => new AllocationStore(dir, 5), /not a valid allocation file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DNS codec round-trips queries and responses, truncates with TC and echoes EDNS', () => {
  const q = decodeQuery(encodeQuery(0x1234, 'My-App.Internal.', TYPE.AAAA, { edns: true }));
  assert.deepEqual(q.question, { name: 'my-app.internal', type: TYPE.AAAA, class: 1 });
  assert.equal(q.ednsUdpSize, 1232);
  assert.equal(q.recursionDesired, true);
  const answers = Array.from({ length: 60 }, (_, i) => ({ type: TYPE.AAAA, ttl: 5, address: `fdaa:0:1:a7b:0:0:${i.toString(16)}:2` }));
  const small = decodeResponse(encodeResponse({ ...q, ednsUdpSize: undefined }, { rcode: 0, answers, maxSize: 512 }));
  assert.equal(small.truncated, true);
  assert.ok(small.answers.length > 0 && small.answers.length < 60);
  const full = decodeResponse(encodeResponse(q, { rcode: 0, answers, maxSize: 65535 }));
  assert.equal(full.answers.length, 60);
  assert.equal(full.id, 0x1234);
  assert.ok(ipv6Bytes((full.answers[59] as { address: string }).address).equals(ipv6Bytes('fdaa:0:1:a7b::3b:2')));
  const txt = decodeResponse(encodeResponse(q, { rcode: 0, answers: [{ type: TYPE.TXT, ttl: 5, text: 'x'.repeat(600) }], maxSize: 65535 }));
  assert.equal((txt.answers[0] as { text: string }).text, 'x'.repeat(600), 'long TXT split into 255-byte strings');
  assert.throws(() => decodeQuery(Buffer.alloc(5)));
});

test('the resolver answers Fly-style .internal names within one org only', () => {
  const dns = new InternalDns({ logger: silentLogger });
  dns.register({ machineId: 'm1', appName: 'web', orgId: 1, region: 'ams', ipv6: 'fdaa:0:1:a7b::2:2', ipv4: '172.30.0.2' });
  dns.register({ machineId: 'm2', appName: 'web', orgId: 1, region: 'cdg', ipv6: 'fdaa:0:1:a7b::3:2', processGroup: 'worker' });
  dns.register({ machineId: 'm3', appName: 'db', orgId: 2, region: 'ams', ipv6: 'fdaa:0:2:a7b::4:2' });
  const r = (org: number, name: string, type: number) => dns.resolve(org, name, type);
  assert.deepEqual(r(1, 'web.internal', TYPE.AAAA).answers.map((a) => 'address' in a && a.address), ['fdaa:0:1:a7b::2:2', 'fdaa:0:1:a7b::3:2']);
  assert.deepEqual(r(1, 'web.internal', TYPE.A).answers.map((a) => 'address' in a && a.address), ['172.30.0.2']);
  assert.equal(r(1, 'm2.vm.web.internal', TYPE.AAAA).answers.length, 1);
  assert.equal(r(1, 'ams.web.internal', TYPE.AAAA).answers.length, 1);
  assert.equal(r(1, 'global.web.internal', TYPE.AAAA).answers.length, 2);
  assert.equal(r(1, 'worker.process.web.internal', TYPE.AAAA).answers.length, 1);
  assert.deepEqual(r(1, '_apps.internal', TYPE.TXT).answers, [{ type: TYPE.TXT, ttl: 5, text: 'web' }]);
  assert.deepEqual(r(1, 'vms.web.internal', TYPE.TXT).answers, [{ type: TYPE.TXT, ttl: 5, text: 'm1 ams,m2 cdg' }]);
  assert.deepEqual(r(1, 'regions.web.internal', TYPE.TXT).answers, [{ type: TYPE.TXT, ttl: 5, text: 'ams,cdg' }]);
  assert.match((r(1, '_instances.internal', TYPE.TXT).answers[0] as { text: string }).text, /^instance=m1,app=web,ip=fdaa:0:1:a7b::2:2,region=ams;instance=m2/);
  assert.deepEqual(r(1, 'web.internal', TYPE.MX), { rcode: RCODE.NOERROR, answers: [] }, 'known name, other type: NODATA');
  assert.equal(r(1, 'db.internal', TYPE.AAAA).rcode, RCODE.NXDOMAIN, 'another org');
  assert.equal(r(2, 'web.internal', TYPE.AAAA).rcode, RCODE.NXDOMAIN);
  assert.equal(r(1, 'nope.web.internal', TYPE.AAAA).rcode, RCODE.NXDOMAIN);
  assert.equal(r(1, 'example.com', TYPE.A).rcode, RCODE.NXDOMAIN);
  // Over the wire: the querier's org comes from its source address; unknown sources are refused.
  const wire = (source: string, name: string) => decodeResponse(dns.answer(encodeQuery(7, name, TYPE.AAAA), source, 'udp')!);
  assert.equal(wire('fdaa:0:1:a7b::2:2', 'web.internal').answers.length, 2);
  assert.equal(wire('fdaa:0:2:a7b::4:2', 'web.internal').rcode, RCODE.NXDOMAIN);
  assert.equal(wire('192.0.2.99', 'web.internal').rcode, RCODE.REFUSED);
  dns.unregister('m1');
  assert.equal(r(1, 'm1.vm.web.internal', TYPE.AAAA).rcode, RCODE.NXDOMAIN);
});

test('a machine that is not started drops out of every .internal answer until it starts again', () => {
  const dns = new InternalDns({ logger: silentLogger });
  dns.register({ machineId: 'm1', appName: 'web', orgId: 1, region: 'ams', ipv6: 'fdaa:0:1:a7b::2:2' });
  dns.register({ machineId: 'm2', appName: 'web', orgId: 1, region: 'cdg', ipv6: 'fdaa:0:1:a7b::3:2' });
  const started = new Set(['m1']);
  dns.setServingFilter((id) => started.has(id));
  const r = (name: string, type: number = TYPE.AAAA) => dns.resolve(1, name, type);
  assert.deepEqual(r('web.internal').answers.map((a) => 'address' in a && a.address), ['fdaa:0:1:a7b::2:2']);
  assert.equal(r('m2.vm.web.internal').rcode, RCODE.NXDOMAIN);
  assert.equal(r('cdg.web.internal').rcode, RCODE.NXDOMAIN);
  assert.deepEqual(r('vms.web.internal', TYPE.TXT).answers, [{ type: TYPE.TXT, ttl: 5, text: 'm1 ams' }]);
  started.delete('m1');
  assert.equal(r('web.internal').rcode, RCODE.NXDOMAIN, 'an app with no started machine has no name');
  assert.equal(r('_apps.internal', TYPE.TXT).rcode, RCODE.NXDOMAIN);
  started.add('m2');
  assert.equal(r('m2.vm.web.internal').answers.length, 1, 'answers again once started');
  // A stopped machine's own queries still count as its org's (it may be about to start).
  assert.equal(decodeResponse(dns.answer(encodeQuery(9, 'web.internal', TYPE.AAAA), 'fdaa:0:1:a7b::2:2', 'udp')!).answers.length, 1);
});

test('nft scripts scope every rule to our table, ports and bridge', () => {
  const ctx = { table: 'hangar', bridge: 'hangar0', ipv4Cidr: '172.30.0.0/16', gateway4: '172.30.0.1', gateway6: 'fdaa:0::1', network6: 'fdaa:0::/32', allowEgress: false };
  const script = bridgeTableScript(ctx, [{ vethName: 'hv1', orgId: 3, ipv4: '172.30.0.2', ipv6: 'fdaa:0:3:a7b::2:2' }]) + inetTableScript(ctx);
  for (const line of script.split('\n').filter(Boolean)) assert.match(line, /^(add|delete|flush) (table|chain|rule|set|map|element) (bridge|inet) hangar\b/, line);
  assert.ok(!script.includes('masquerade'));
  assert.ok(inetTableScript({ ...ctx, allowEgress: true }).includes('ip saddr 172.30.0.0/16 oifname != "hangar0" masquerade'));
});
