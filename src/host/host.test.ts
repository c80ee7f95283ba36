import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../testkit/paths.js';
import { runHostMain } from './main.js';
import { actionDisplay, detectKvm, HOST_PACKAGES, HOST_REQUIREMENTS, type HostAction, type HostProbes, UNIFIED_CONTROLLERS } from './requirements.js';
import { checkHost, formatCheck, planSetup, setupHost, type HostExecutor } from './runner.js';

const BINARIES: Record<string, string> = Object.fromEntries(HOST_PACKAGES.map((p) => [p.pkg, p.binary.startsWith('/') ? p.binary : `/usr/bin/${p.binary}`]));
const SYSCTL_FILES = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding', '/proc/sys/net/ipv4/conf/all/route_localnet'];
/** Neighbour-table thresholds: kernel defaults on a fresh host, what setup writes on a ready one. */
const NEIGH = (['ipv4', 'ipv6'] as const).flatMap((f) => ([['gc_thresh1', '128', '2048'], ['gc_thresh2', '512', '8192'], ['gc_thresh3', '1024', '16384']] as const)
  .map(([name, fresh, ready]) => ({ key: `net.${f}.neigh.default.${name}`, file: `/proc/sys/net/${f}/neigh/default/${name}`, fresh, ready })));

/** A fake host: files, installed packages and binaries; its executor changes that state like the real commands would. */
class FakeHost {
  uid = 0;
  apt = true;
  files = new Map<string, string>();
  packages = new Map<string, string>();
  binaries = new Set<string>();
  charDevices = new Set<string>();
  ran: string[] = [];
  /** Makes one command fail (by its display text); the callback may change state first. */
  failing = new Map<string, () => void>();

  static fresh(): FakeHost {
    const host = new FakeHost();
    host.files.set(UNIFIED_CONTROLLERS, 'hugetlb\n');
    host.files.set('/proc/self/mountinfo', '30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n');
    for (const f of SYSCTL_FILES) host.files.set(f, '0\n');
    for (const n of NEIGH) host.files.set(n.file, `${n.fresh}\n`);
    host.files.set('/proc/sys/kernel/osrelease', '6.1.0-test\n');
    host.files.set('/proc/cpuinfo', 'processor : 0\nflags : fpu hypervisor\n');
    host.files.set('/proc/net/ipv6_route', '');
    return host;
  }

  static ready(): FakeHost {
    const host = FakeHost.fresh();
    for (const { pkg } of HOST_PACKAGES) host.install(pkg);
    host.files.set(UNIFIED_CONTROLLERS, '');
    for (const f of SYSCTL_FILES) host.files.set(f, '1\n');
    for (const n of NEIGH) host.files.set(n.file, `${n.ready}\n`);
    host.files.set('/proc/sys/net/bridge', '');
    return host;
  }

  install(pkg: string) {
    this.packages.set(pkg, '1.0-test');
    this.binaries.add(BINARIES[pkg] ?? `/usr/bin/${pkg}`);
  }

  probes(): HostProbes {
    return {
      uid: () => this.uid,
      readFile: (path) => this.files.get(path),
      exists: (path) => this.files.has(path) || this.binaries.has(path),
      isCharDevice: (path) => this.charDevices.has(path),
      which: (command) => [...this.binaries].find((b) => b.endsWith(`/${command}`)),
      hasApt: () => this.apt,
      packageVersion: (pkg) => this.packages.get(pkg),
    };
  }

  executor(): HostExecutor {
    return {
      run: async (action: HostAction) => {
        const display = actionDisplay(action);
        this.ran.push(display);
        const fail = this.failing.get(display);
        if (fail) {
          fail();
          throw new Error(`${display} failed`);
        }
        if (action.kind === 'write') this.files.set(action.path, action.content);
        if (action.kind === 'exec' && action.argv[0] === 'apt-get' && action.argv[1] === 'install') {
          assert.equal(action.env?.DEBIAN_FRONTEND, 'noninteractive');
          for (const pkg of action.argv.slice(2).filter((a) => !a.startsWith('-'))) this.install(pkg);
        }
        if (action.kind === 'exec' && action.argv[0] === 'mount') this.mount(action.argv[4]!, action.argv[6]!);
        if (action.kind === 'exec' && action.argv[0] === 'modprobe') this.files.set('/proc/sys/net/bridge', '');
      },
    };
  }

  mount(controller: string, dir: string) {
    this.files.set('/proc/self/mountinfo', `${this.files.get('/proc/self/mountinfo')}40 25 0:40 / ${dir} rw - cgroup cgroup rw,${controller}\n`);
    const left = (this.files.get(UNIFIED_CONTROLLERS) ?? '').split(/\s+/).filter((c) => c && c !== controller);
    this.files.set(UNIFIED_CONTROLLERS, left.join(' '));
  }
}

async function setup(host: FakeHost) {
  const lines: string[] = [];
  const outcome = await setupHost(HOST_REQUIREMENTS, () => host.probes(), host.executor(), (l) => lines.push(l));
  return { outcome, lines };
}

describe('host check', () => {
  it('reports every missing requirement of a fresh host, with a fix', () => {
    const report = checkHost(HOST_REQUIREMENTS, FakeHost.fresh().probes());
    assert.equal(report.ok, false);
    const failed = report.results.filter((r) => !r.ok && r.level === 'required').map((r) => r.id);
    assert.deepEqual(failed, [
      ...HOST_PACKAGES.map((p) => `package:${p.pkg}`),
      'cgroup-hybrid',
      'sysctl:net.ipv4.ip_forward',
      'sysctl:net.ipv6.conf.all.forwarding',
      'sysctl:net.ipv4.conf.all.route_localnet',
      'sysctl:net.ipv4.neigh.default.gc_thresh',
      'sysctl:net.ipv6.neigh.default.gc_thresh',
    ]);
    for (const r of report.results.filter((x) => !x.ok)) assert.ok(r.fix && r.fix.length > 0, r.id);
    const text = formatCheck(report);
    assert.match(text, /FAIL\s+package crun\s+not installed/);
    assert.match(text, /fix: mkdir -p \/sys\/fs\/cgroup\/hugetlb && mount -t cgroup -o hugetlb/);
    assert.match(text, /fix: sysctl -w net.ipv4.ip_forward=1/);
    assert.match(text, /host check: 16 of 18 required checks fail/);
  });

  it('passes on a ready host; optional and info items never fail it', () => {
    const host = FakeHost.ready();
    host.files.delete('/proc/sys/net/bridge'); // br_netfilter missing: a warning only
    const report = checkHost(HOST_REQUIREMENTS, host.probes());
    assert.equal(report.ok, true);
    assert.equal(report.results.find((r) => r.id === 'br_netfilter')?.ok, false);
    assert.equal(report.results.find((r) => r.id === 'kvm')?.ok, false);
    const text = formatCheck(report);
    assert.match(text, /warn\s+br_netfilter module/);
    assert.match(text, /info\s+KVM for microVMs\s+no \/dev\/kvm/);
    assert.match(text, /host check: all 18 required checks pass\n$/);
  });

  it('fails when not root', () => {
    const host = FakeHost.ready();
    host.uid = 1000;
    const report = checkHost(HOST_REQUIREMENTS, host.probes());
    assert.equal(report.ok, false);
    assert.deepEqual(report.results.filter((r) => !r.ok && r.level === 'required').map((r) => r.id), ['root']);
  });

  it('wants the Debian package, not just a binary of the same name', () => {
    const host = FakeHost.ready();
    host.packages.delete('busybox-static'); // /bin/busybox from the dynamic `busybox` package
    const r = checkHost(HOST_REQUIREMENTS, host.probes()).results.find((x) => x.id === 'package:busybox-static')!;
    assert.equal(r.ok, false);
    assert.match(r.detail, /\/bin\/busybox exists but the Debian package busybox-static is not installed/);
    host.apt = false; // elsewhere the binary is enough
    assert.equal(checkHost(HOST_REQUIREMENTS, host.probes()).results.find((x) => x.id === 'package:busybox-static')!.ok, true);
  });

  it('reads cgroup layouts', () => {
    const host = FakeHost.ready();
    const cgroup = () => checkHost(HOST_REQUIREMENTS, host.probes()).results.find((r) => r.id === 'cgroup-hybrid')!;
    assert.match(cgroup().detail, /owns no controllers/);
    host.files.delete(UNIFIED_CONTROLLERS);
    assert.equal(cgroup().ok, true);
    host.files.set('/sys/fs/cgroup/cgroup.controllers', 'cpu memory');
    assert.match(cgroup().detail, /pure cgroup v2/);
    host.files.set(UNIFIED_CONTROLLERS, 'hugetlb misc');
    assert.equal(cgroup().ok, false);
    assert.match(cgroup().detail, /still owns hugetlb, misc/);
  });

  it('tells hardware KVM from PVM', () => {
    const host = FakeHost.ready();
    assert.equal(detectKvm(host.probes()).kind, 'none');
    host.charDevices.add('/dev/kvm');
    assert.equal(detectKvm(host.probes()).kind, 'other');
    host.files.set('/sys/module/kvm_pvm', '');
    assert.equal(detectKvm(host.probes()).kind, 'pvm');
    host.files.set('/proc/cpuinfo', 'flags : fpu vmx sse\n');
    host.files.set('/sys/module/kvm_intel', '');
    assert.equal(detectKvm(host.probes()).kind, 'hardware');
    host.files.set('/proc/cpuinfo', 'flags : fpu svm sse\n');
    host.files.delete('/sys/module/kvm_intel');
    assert.equal(detectKvm(host.probes()).kind, 'pvm');
    host.files.set('/sys/module/kvm_amd', '');
    assert.equal(detectKvm(host.probes()).kind, 'hardware');
  });
});

describe('host setup', () => {
  it('fixes a fresh host in one pass, installing all packages with one apt-get call', async () => {
    const host = FakeHost.fresh();
    const { outcome, lines } = await setup(host);
    assert.equal(outcome.ok, true, lines.join('\n'));
    const pkgs = HOST_PACKAGES.map((p) => p.pkg).join(' ');
    assert.deepEqual(host.ran, [
      'DEBIAN_FRONTEND=noninteractive apt-get update -q',
      `DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${pkgs}`,
      'mkdir -p /sys/fs/cgroup/hugetlb',
      'mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb',
      'sysctl -w net.ipv4.ip_forward=1',
      'sysctl -w net.ipv6.conf.all.forwarding=1',
      'sysctl -w net.ipv4.conf.all.route_localnet=1',
      ...NEIGH.map((n) => `sysctl -w ${n.key}=${n.ready}`),
    ]);
    assert.ok(lines.some((l) => /^ {2}run {3}sysctl -w net.ipv4.ip_forward=1$/.test(l)));
    assert.ok(lines.some((l) => /skip\s+br_netfilter module: optional: not available in kernel 6.1.0-test/.test(l)));
    assert.equal(lines.at(-1), 'host setup: done, the host is ready');
    assert.equal(checkHost(HOST_REQUIREMENTS, host.probes()).ok, true);

    // The second run does nothing and says so.
    host.ran = [];
    const second = await setup(host);
    assert.equal(second.outcome.ok, true);
    assert.deepEqual(host.ran, []);
    assert.deepEqual(second.outcome.ran, []);
    for (const line of second.lines.slice(0, -1)) assert.match(line, /^ {2}(ok|skip) /);
    assert.equal(second.lines.at(-1), 'host setup: nothing to do, the host is ready');
  });

  it('runs apt-get only for missing packages, and not at all when none is missing', async () => {
    const host = FakeHost.ready();
    host.packages.delete('tini');
    host.binaries.delete('/usr/bin/tini-static');
    host.files.set('/proc/sys/net/ipv4/ip_forward', '0\n');
    await setup(host);
    assert.deepEqual(host.ran, [
      'DEBIAN_FRONTEND=noninteractive apt-get update -q',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tini',
      'sysctl -w net.ipv4.ip_forward=1',
    ]);
    host.ran = [];
    host.files.set('/proc/sys/net/ipv4/conf/all/route_localnet', '0\n');
    await setup(host);
    assert.deepEqual(host.ran, ['sysctl -w net.ipv4.conf.all.route_localnet=1']);
  });

  it('loads br_netfilter when the kernel has it; a failure there is not fatal', async () => {
    const host = FakeHost.ready();
    host.files.delete('/proc/sys/net/bridge');
    host.files.set('/lib/modules/6.1.0-test/modules.dep', 'kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko\n');
    host.binaries.add('/usr/sbin/modprobe');
    host.failing.set('modprobe br_netfilter', () => {});
    const failed = await setup(host);
    assert.equal(failed.outcome.ok, true);
    assert.ok(failed.lines.some((l) => /skip\s+br_netfilter module: optional, failed: modprobe br_netfilter failed/.test(l)), failed.lines.join('\n'));
    host.failing.clear();
    host.ran = [];
    await setup(host);
    assert.deepEqual(host.ran, ['modprobe br_netfilter']);
  });

  it('treats a step that a concurrent setup finished as done', async () => {
    const host = FakeHost.ready();
    host.files.set(UNIFIED_CONTROLLERS, 'hugetlb');
    host.failing.set('mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb', () => host.mount('hugetlb', '/sys/fs/cgroup/hugetlb'));
    const { outcome, lines } = await setup(host);
    assert.equal(outcome.ok, true);
    assert.ok(lines.some((l) => /ok\s+cgroup2 controllers freed \(crun\): done concurrently/.test(l)), lines.join('\n'));
    // and does not mount again once mountinfo shows it
    const host2 = FakeHost.ready();
    host2.files.set(UNIFIED_CONTROLLERS, 'hugetlb');
    host2.mount('hugetlb', '/sys/fs/cgroup/hugetlb');
    host2.files.set(UNIFIED_CONTROLLERS, 'hugetlb');
    assert.deepEqual(planSetup(HOST_REQUIREMENTS, host2.probes()).find((s) => s.ids.includes('cgroup-hybrid'))?.actions, []);
  });

  it('reports what it cannot fix and fails', async () => {
    const host = FakeHost.fresh();
    host.apt = false;
    host.failing.set('sysctl -w net.ipv4.ip_forward=1', () => {});
    const { outcome, lines } = await setup(host);
    assert.equal(outcome.ok, false);
    assert.ok(lines.some((l) => /FAIL\s+packages: not an apt host: install crun runc/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /FAIL\s+sysctl net.ipv4.ip_forward=1: sysctl -w net.ipv4.ip_forward=1 failed/.test(l)));
    assert.match(lines.at(-1)!, /^host setup: not ready: package crun/);
  });

  it('keeps an RA-learned IPv6 default route before turning on forwarding', async () => {
    const host = FakeHost.ready();
    host.files.set('/proc/sys/net/ipv6/conf/all/forwarding', '0\n');
    const zero = '0'.repeat(32);
    host.files.set('/proc/net/ipv6_route', `${zero} 00 ${zero} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00050003     eth0\n`);
    host.files.set('/proc/sys/net/ipv6/conf/eth0/accept_ra', '1\n');
    await setup(host);
    assert.deepEqual(host.ran, ['sysctl -w net.ipv6.conf.eth0.accept_ra=2', 'sysctl -w net.ipv6.conf.all.forwarding=1']);
  });
});

describe('runHostMain', () => {
  const io = () => {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: { write: (t: string) => (out.stdout += t) }, stderr: { write: (t: string) => (out.stderr += t) } } };
  };

  it('prints help and rejects unknown commands and flags', async () => {
    const a = io();
    assert.equal(await runHostMain(['--help'], a.io), 0);
    assert.match(a.out.stdout, /hangar host <command>/);
    await assert.rejects(runHostMain(['frobnicate'], io().io), /unknown command "frobnicate"; commands: setup, check/);
    await assert.rejects(runHostMain(['check', '--nope'], io().io), /hangar host check: Unknown option '--nope'/);
  });
});

describe('docs/host.md', () => {
  it('lists every requirement and package', () => {
    const doc = readFileSync(join(repoRoot(), 'docs', 'host.md'), 'utf8');
    for (const req of HOST_REQUIREMENTS.filter((r) => !r.aptPackage)) assert.ok(doc.includes(`| \`${req.id}\` |`), `docs/host.md lacks a row for ${req.id}`);
    for (const { pkg, binary } of HOST_PACKAGES) assert.ok(doc.includes(`| ${pkg} | \`${binary}\` |`), `docs/host.md lacks a row for package ${pkg}`);
  });
});
