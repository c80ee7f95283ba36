/**
 * Real bridge, namespaces and nftables (root only). Each run uses its own bridge `hgt<rand>`,
 * IPv4 /24 in 172.31.0.0/16, 6PN net, netns prefix and nft table, so it never collides with a
 * running hangar; every packet targets addresses this test created. Cleanup runs in `after`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../core/logger.js';
import { TYPE, decodeResponse, encodeQuery, ipv6Bytes } from './dns-wire.js';
import { HostNetwork, type HostNetworkOptions, type MachineNetwork } from './host-network.js';

const canRun = process.getuid?.() === 0 && hasCommand('ip') && hasCommand('nft');
const skip = canRun ? false : 'needs root, iproute2 and nftables';

function hasCommand(cmd: string): boolean {
  try {
    execFileSync(cmd, ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const rand = randomBytes(2).toString('hex');
const stateDir = mkdtempSync(join(tmpdir(), 'hangar-net-test-'));
const options: HostNetworkOptions = {
  logger: silentLogger,
  stateDir,
  bridge: `hgt${rand}`,
  ipv4Cidr: `172.31.${freeThirdOctet()}.0/24`,
  ipv6Net: 0x1000 + randomInt(0xe000),
  hostIndex: 7,
  netnsPrefix: `ht${rand}-`,
};
const id = () => randomBytes(7).toString('hex');
const A1 = { machineId: id(), orgId: 0x51, appName: 'alpha' };
const A2 = { machineId: id(), orgId: 0x51, appName: 'alpha' };
const A3 = { machineId: id(), orgId: 0x51, appName: 'beta' };
const B1 = { machineId: id(), orgId: 0x52, appName: 'gamma' };

function freeThirdOctet(): number {
  const used = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' });
  for (let i = 0; i < 50; i++) {
    const n = randomInt(16, 250);
    if (!used.includes(`172.31.${n}.`)) return n;
  }
  throw new Error('no free 172.31.x.0/24 for the test');
}

const children: ChildProcess[] = [];

/** Runs a node script inside a namespace and returns its stdout (bounded by `timeoutMs`). */
function inNetns(ns: string, script: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`in ${ns} exited ${code}: ${err}`));
    });
  });
}

/** A TCP server on [::]:8080 (v4 and v6) inside the namespace that answers its machine id. */
async function startListener(ns: string, machineId: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer((s) => s.end(${JSON.stringify(machineId)})).listen(8080, '::', () => console.log('READY'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`listener in ${ns} not ready within 5 s`)), 5_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`listener in ${ns} exited ${code}`)));
  });
}

/** From inside `ns`: connect to host:8080 and print what the peer says, or `blocked:<reason>`. */
function probeFrom(ns: string, host: string, timeoutMs = 700): Promise<string> {
  return inNetns(ns, `
    import { connect } from 'node:net';
    const s = connect({ host: ${JSON.stringify(host)}, port: 8080 });
    let data = '';
    const t = setTimeout(() => { console.log('blocked:timeout'); process.exit(0); }, ${timeoutMs});
    s.on('data', (d) => (data += d));
    s.on('end', () => { clearTimeout(t); console.log(data); process.exit(0); });
    s.on('error', (e) => { clearTimeout(t); console.log('blocked:' + e.code); process.exit(0); });
  `);
}

function probeFromHost(host: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port: 8080 });
    let data = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve('blocked:timeout');
    }, timeoutMs);
    s.on('data', (d) => (data += d));
    s.on('end', () => {
      clearTimeout(t);
      resolve(data);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(`blocked:${e.code}`);
    });
  });
}

/** From inside `ns`: one UDP query to server:53; prints the decoded response as JSON. */
async function dnsFrom(ns: string, server: string, name: string, type: number) {
  const query = encodeQuery(randomInt(65536), name, type, { edns: true }).toString('base64');
  const out = await inNetns(ns, `
    import { createSocket } from 'node:dgram';
    const s = createSocket(${JSON.stringify(server.includes(':') ? 'udp6' : 'udp4')});
    const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, 1500);
    s.on('message', (m) => { clearTimeout(t); console.log(m.toString('base64')); process.exit(0); });
    s.send(Buffer.from(${JSON.stringify(query)}, 'base64'), 53, ${JSON.stringify(server)});
  `);
  assert.notEqual(out, 'timeout', `DNS query ${name} from ${ns} to ${server} timed out`);
  return decodeResponse(Buffer.from(out, 'base64'));
}

const sameV6 = (a: string, b: string) => ipv6Bytes(a).equals(ipv6Bytes(b));

describe('HostNetwork on real namespaces', { skip, timeout: 120_000 }, () => {
  let net: HostNetwork;
  const nets = new Map<string, MachineNetwork>();

  before(async () => {
    net = new HostNetwork(options);
    await net.setup();
    for (const m of [A1, A2, A3, B1]) nets.set(m.machineId, await net.attach(m));
    for (const m of [A1, A2, A3, B1]) {
      const n = nets.get(m.machineId)!;
      net.dns.register({ ...m, region: m === A2 ? 'ams' : 'cdg', ipv6: n.ipv6, ipv4: n.ipv4 });
    }
    await Promise.all([A2, B1].map((m) => startListener(nets.get(m.machineId)!.netnsName, m.machineId)));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    const cleanup = new HostNetwork(options);
    await cleanup.destroyHostLevel().catch((err: unknown) => console.error('cleanup failed', err));
    await net?.close();
    // Last resort: never leave test interfaces or tables behind.
    execFileSync('sh', ['-c', `ip link del ${options.bridge} 2>/dev/null; for n in $(ip netns list | grep -o '^${options.netnsPrefix}[0-9a-f]*'); do ip netns del $n; done; nft delete table bridge hangar_${options.bridge} 2>/dev/null; nft delete table inet hangar_${options.bridge} 2>/dev/null; true`]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('addresses follow the layout and are unique', () => {
    const n = nets.get(A1.machineId)!;
    assert.match(n.ipv6, new RegExp(`^fdaa:${options.ipv6Net!.toString(16)}:51:a7b:7:0:[0-9a-f]+:2$`));
    assert.match(n.ipv4, /^172\.31\.\d+\.\d+$/);
    assert.equal(n.gateway4, options.ipv4Cidr!.replace(/0\/24$/, '1'));
    assert.equal(n.netnsPath, `/var/run/netns/${options.netnsPrefix}${A1.machineId}`);
    assert.ok(existsSync(n.netnsPath));
    const all = [...nets.values()];
    assert.equal(new Set(all.map((x) => x.ipv4)).size, all.length);
    assert.equal(new Set(all.map((x) => x.ipv6)).size, all.length);
    assert.ok(sameV6(nets.get(B1.machineId)!.ipv6.replace(/^(fdaa:[0-9a-f]+:)52/, '$151'), nets.get(B1.machineId)!.ipv6.replace(/^(fdaa:[0-9a-f]+:)52/, '$151')));
  });

  test('same org reaches each other over IPv6 and IPv4', async () => {
    const a2 = nets.get(A2.machineId)!;
    assert.equal(await probeFrom(nets.get(A1.machineId)!.netnsName, a2.ipv6, 3_000), A2.machineId);
    assert.equal(await probeFrom(nets.get(A1.machineId)!.netnsName, a2.ipv4, 3_000), A2.machineId);
    assert.equal(await probeFrom(nets.get(A3.machineId)!.netnsName, a2.ipv6, 3_000), A2.machineId, 'another app of the same org');
  });

  test('another org is blocked both ways, over IPv6 and IPv4', async () => {
    const b1 = nets.get(B1.machineId)!;
    const a2 = nets.get(A2.machineId)!;
    assert.match(await probeFrom(b1.netnsName, a2.ipv6), /^blocked:/);
    assert.match(await probeFrom(b1.netnsName, a2.ipv4), /^blocked:/);
    assert.match(await probeFrom(nets.get(A1.machineId)!.netnsName, b1.ipv6), /^blocked:/);
    assert.match(await probeFrom(nets.get(A1.machineId)!.netnsName, b1.ipv4), /^blocked:/);
  });

  test('the host reaches every machine', async () => {
    for (const m of [A2, B1]) {
      const n = nets.get(m.machineId)!;
      assert.equal(await probeFromHost(n.ipv6), m.machineId);
      assert.equal(await probeFromHost(n.ipv4), m.machineId);
    }
  });

  test('machines cannot reach other host services or the host network', async () => {
    const a1 = nets.get(A1.machineId)!;
    // A listener on the gateway (host side) that is not DNS: dropped by the inet input chain.
    const { createServer } = await import('node:net');
    const server = createServer((s) => s.end('host')).listen(8080, a1.gateway4);
    await new Promise((r) => server.once('listening', r));
    try {
      assert.match(await probeFrom(a1.netnsName, a1.gateway4), /^blocked:/);
    } finally {
      server.close();
    }
  });

  test('DNS answers .internal names from inside a namespace, scoped to the org', async () => {
    const a1 = nets.get(A1.machineId)!;
    const b1 = nets.get(B1.machineId)!;
    const app = await dnsFrom(a1.netnsName, a1.dnsServer, 'alpha.internal', TYPE.AAAA);
    assert.equal(app.rcode, 0);
    assert.equal(app.answers.length, 2);
    const v4 = await dnsFrom(a1.netnsName, a1.gateway4, 'ALPHA.internal', TYPE.A);
    assert.deepEqual(v4.answers.map((x) => 'address' in x && x.address).sort(), [a1.ipv4, nets.get(A2.machineId)!.ipv4].sort());
    const vm = await dnsFrom(a1.netnsName, a1.dnsServer, `${A2.machineId}.vm.alpha.internal`, TYPE.AAAA);
    assert.equal(vm.answers.length, 1);
    assert.ok(sameV6((vm.answers[0] as { address: string }).address, nets.get(A2.machineId)!.ipv6));
    const region = await dnsFrom(a1.netnsName, a1.dnsServer, 'ams.alpha.internal', TYPE.AAAA);
    assert.equal(region.answers.length, 1);
    const apps = await dnsFrom(a1.netnsName, a1.dnsServer, '_apps.internal', TYPE.TXT);
    assert.deepEqual(apps.answers, [{ type: TYPE.TXT, ttl: 5, text: 'alpha,beta' }]);
    // Cross-org: B cannot see A's names and A cannot see B's.
    assert.equal((await dnsFrom(b1.netnsName, b1.dnsServer, 'alpha.internal', TYPE.AAAA)).rcode, 3);
    assert.equal((await dnsFrom(a1.netnsName, a1.dnsServer, 'gamma.internal', TYPE.AAAA)).rcode, 3);
    assert.deepEqual((await dnsFrom(b1.netnsName, b1.dnsServer, '_apps.internal', TYPE.TXT)).answers.map((x) => 'text' in x && x.text), ['gamma']);
    assert.equal((await dnsFrom(a1.netnsName, a1.dnsServer, 'example.com', TYPE.A)).rcode, 3);
  });

  test('attach is idempotent and detach is idempotent; stopped machines leave DNS', async () => {
    const again = await net.attach(A1);
    assert.deepEqual(again, nets.get(A1.machineId));
    const m = { machineId: id(), orgId: 0x51, appName: 'alpha' };
    const first = await net.attach(m);
    await net.detach(m.machineId);
    await net.detach(m.machineId);
    assert.ok(!existsSync(first.netnsPath));
    assert.ok(!existsSync(`/sys/class/net/${first.vethName}`));
    const second = await net.attach(m);
    assert.deepEqual(second, first, 'same addresses after detach + attach');
    await net.release(m.machineId);
    await net.release(m.machineId);
    assert.equal(net.get(m.machineId), undefined);
  });

  test('allocations are stable across a new HostNetwork on the same stateDir', async () => {
    const fresh = new HostNetwork(options);
    for (const m of [A1, A2, B1]) assert.deepEqual(fresh.get(m.machineId), nets.get(m.machineId));
    assert.deepEqual(await fresh.attach(A2), nets.get(A2.machineId));
    const file = JSON.parse(readFileSync(join(stateDir, 'network-allocations.json'), 'utf8')) as { machines: unknown[] };
    assert.equal(file.machines.length, 4);
  });

  test('recover removes orphans (unknown allocations, stray namespaces) and keeps the rest working', async () => {
    const orphan = { machineId: id(), orgId: 0x52, appName: 'gamma' };
    const o = await net.attach(orphan);
    const strayNs = `${options.netnsPrefix}ffffffffffffff`;
    execFileSync('ip', ['netns', 'add', strayNs]);
    const { removed } = await net.recover(new Set([A1, A2, A3, B1].map((m) => m.machineId)));
    assert.deepEqual(removed.sort(), [orphan.machineId, 'ffffffffffffff'].sort());
    assert.ok(!existsSync(o.netnsPath));
    assert.ok(!existsSync(`/var/run/netns/${strayNs}`));
    assert.ok(!existsSync(`/sys/class/net/${o.vethName}`));
    assert.equal(net.get(orphan.machineId), undefined);
    const elements = execFileSync('nft', ['list', 'set', 'bridge', `hangar_${options.bridge}`, 'ports'], { encoding: 'utf8' });
    assert.ok(!elements.includes(o.vethName));
    // The rebuilt tables still isolate and still connect.
    assert.equal(await probeFrom(nets.get(A1.machineId)!.netnsName, nets.get(A2.machineId)!.ipv6, 3_000), A2.machineId);
    assert.match(await probeFrom(nets.get(B1.machineId)!.netnsName, nets.get(A2.machineId)!.ipv4), /^blocked:/);
  });

  test('setup is idempotent and leaves other tables alone', async () => {
    execFileSync('nft', ['add', 'table', 'inet', `other_${rand}`]);
    try {
      await net.setup();
      await net.setup();
      const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
      assert.ok(tables.includes(`table inet other_${rand}`));
      assert.equal(await probeFrom(nets.get(A1.machineId)!.netnsName, nets.get(A2.machineId)!.ipv4, 3_000), A2.machineId);
    } finally {
      execFileSync('nft', ['delete', 'table', 'inet', `other_${rand}`]);
    }
  });
});
