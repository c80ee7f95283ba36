import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import { buildOciSpec, hostsFile, machineArgv, machineEnv, machineResources, resolvConf, type ImageConfig } from './oci-spec.js';

const spec = (config: Partial<AgentMachineSpec['config']> = {}): AgentMachineSpec => ({
  id: '0123456789abcd', name: 'm', app_name: 'app', org_slug: 'personal', org_id: 1, region: 'ams', version: 'v1',
  config: { image: 'busybox', ...config },
});
const network = { netnsPath: '/var/run/netns/hm-0123456789abcd', ipv6: 'fdaa:0:1:a7b:1::2', ipv4: '172.30.0.2' };

describe('machineArgv (Docker semantics)', () => {
  const image: ImageConfig = { Entrypoint: ['/entry'], Cmd: ['serve'] };
  const cases: [string, AgentMachineSpec['config']['init'], ImageConfig, string[]][] = [
    ['image entrypoint + cmd', undefined, image, ['/entry', 'serve']],
    ['init.exec replaces everything', { exec: ['sh', '-c', 'x'], cmd: ['ignored'] }, image, ['sh', '-c', 'x']],
    ['init.cmd replaces Cmd only', { cmd: ['migrate'] }, image, ['/entry', 'migrate']],
    ['init.entrypoint drops the image Cmd', { entrypoint: ['/other'] }, image, ['/other']],
    ['init.entrypoint + init.cmd', { entrypoint: ['/other'], cmd: ['a'] }, image, ['/other', 'a']],
    ['Cmd only', undefined, { Cmd: ['httpd', '-f'] }, ['httpd', '-f']],
    ['nothing', undefined, {}, []],
  ];
  for (const [name, init, img, want] of cases) test(name, () => assert.deepEqual(machineArgv(spec(init ? { init } : {}), img), want));
});

describe('machineEnv', () => {
  test('image env, config env, then FLY_* (which win)', () => {
    const env = machineEnv({
      spec: spec({ env: { A: 'config', FLY_REGION: 'spoofed' }, metadata: { fly_process_group: 'web' }, guest: { cpus: 1, memory_mb: 512 } }),
      image: { config: { Env: ['A=image', 'B=image', 'PATH=/bin'] }, imageRef: { registry: 'r.io', repository: 'app', tag: 't', digest: 'sha256:d', labels: {} } },
      network,
    });
    assert.deepEqual(env, [
      'A=config', 'B=image', 'PATH=/bin', 'FLY_REGION=ams', 'FLY_APP_NAME=app', 'FLY_MACHINE_ID=0123456789abcd', 'FLY_ALLOC_ID=0123456789abcd',
      'FLY_PUBLIC_IP=', `FLY_PRIVATE_IP=${network.ipv6}`, 'FLY_IMAGE_REF=r.io/app:t@sha256:d', 'FLY_MACHINE_VERSION=v1', 'FLY_PROCESS_GROUP=web',
      'PRIMARY_REGION=ams', 'FLY_VM_MEMORY_MB=512',
    ]);
  });
  test('defaults: PATH, process group app, PRIMARY_REGION from env', () => {
    const env = machineEnv({ spec: spec({ env: { PRIMARY_REGION: 'fra' } }), image: { config: {} }, network });
    assert.ok(env.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'));
    assert.ok(env.includes('FLY_PROCESS_GROUP=app'));
    assert.ok(env.includes('PRIMARY_REGION=fra'));
    assert.ok(env.includes('FLY_VM_MEMORY_MB=256'));
    assert.ok(env.includes('FLY_IMAGE_REF=busybox'));
  });
});

describe('machineResources', () => {
  const cases: [string, AgentMachineSpec['config']['guest'], ReturnType<typeof machineResources>][] = [
    ['default shared-cpu-1x', undefined, { memory: { limit: 256 << 20, swap: 256 << 20 }, cpu: { shares: 256, quota: 100_000, period: 100_000 }, pids: { limit: 4096 }, devices: [{ allow: false, access: 'rwm' }] }],
    ['performance-2x', { cpu_kind: 'performance', cpus: 2, memory_mb: 4096 }, { memory: { limit: 4096 * 1024 * 1024, swap: 4096 * 1024 * 1024 }, cpu: { shares: 2048, quota: 200_000, period: 100_000 }, pids: { limit: 4096 }, devices: [{ allow: false, access: 'rwm' }] }],
  ];
  for (const [name, guest, want] of cases) test(name, () => assert.deepEqual(machineResources(spec(guest ? { guest } : {})), want));
});

describe('buildOciSpec', () => {
  test('golden: a busybox httpd machine', () => {
    const config = buildOciSpec({
      spec: spec(), image: { config: { Cmd: ['httpd', '-f'], WorkingDir: '/www', User: '1000:100' } }, network,
      paths: { rootfs: '/d/rootfs', tini: '/usr/bin/tini-static', resolvConf: '/d/etc/resolv.conf', hosts: '/d/etc/hosts', hostname: '/d/etc/hostname' },
    });
    assert.deepEqual(config.process.args, ['/.hangar/tini', '-g', '--', 'httpd', '-f']);
    assert.deepEqual(config.process.user, { uid: 1000, gid: 100 });
    assert.deepEqual(config.process.capabilities.bounding, []);
    assert.equal(config.process.cwd, '/www');
    assert.equal(config.process.terminal, false);
    assert.deepEqual(config.root, { path: '/d/rootfs', readonly: false });
    assert.equal(config.hostname, '0123456789abcd');
    assert.deepEqual(config.linux.namespaces, [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network', path: network.netnsPath }]);
    assert.equal(config.linux.cgroupsPath, '/hangar/0123456789abcd');
    assert.deepEqual(config.mounts.filter((m) => m.type === 'bind').map((m) => [m.destination, m.source]), [
      ['/.hangar/tini', '/usr/bin/tini-static'], ['/etc/resolv.conf', '/d/etc/resolv.conf'], ['/etc/hosts', '/d/etc/hosts'], ['/etc/hostname', '/d/etc/hostname'],
    ]);
    assert.deepEqual(config.mounts.map((m) => m.destination).slice(0, 8), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup', '/run']);
  });
  test('root user gets the default capabilities; a relative WorkingDir falls back to /', () => {
    const config = buildOciSpec({ spec: spec(), image: { config: { Cmd: ['x'], WorkingDir: 'rel' } }, network: { ipv6: '::1' }, paths: { rootfs: '/r', tini: '/t' } });
    assert.ok(config.process.capabilities.bounding.includes('CAP_NET_BIND_SERVICE'));
    assert.equal(config.process.cwd, '/');
    assert.deepEqual(config.linux.namespaces.at(-1), { type: 'network' });
  });
});

describe('hosts and resolv.conf', () => {
  test('hosts names the machine on its addresses', () => {
    assert.equal(hostsFile(spec(), network), `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${network.ipv6}\t0123456789abcd 0123456789abcd.vm.app.internal\n172.30.0.2\t0123456789abcd\n`);
  });
  test('resolv.conf: config.dns wins over the network DNS server', () => {
    assert.equal(resolvConf(spec(), 'fdaa::3'), 'nameserver fdaa::3\n');
    assert.equal(resolvConf(spec({ dns: { nameservers: ['1.1.1.1'], searches: ['internal'], options: [{ name: 'ndots', value: '1' }] } }), 'fdaa::3'), 'nameserver 1.1.1.1\nsearch internal\noptions ndots:1\n');
  });
});
