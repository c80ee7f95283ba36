/**
 * End to end on real containers: `bin/hangar up` with its default driver (crun) on a temp data dir,
 * free ports and a host network of the test's own (HANGAR_AGENT_NETWORK), an image from a local
 * registry, and the `hangar` CLI: apps create, machine run, HTTP to the machine's private IP,
 * logs, stop, destroy. SIGTERM stops everything and leaves no container behind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HostNetwork } from '../../src/agent/network/host-network.js';
import { silentLogger } from '../../src/core/logger.js';
import { crunClusterUnavailable } from '../../src/testkit/crun-cluster.js';
import { buildBusyboxImage } from '../../src/testkit/images.js';
import { repoRoot } from '../../src/testkit/paths.js';
import { runCommand, waitForUp } from '../../src/testkit/processes.js';
import { freeLoopbackPort, startRegistry, type TestRegistry } from '../../src/testkit/registry.js';
import { waitHttp } from '../api/crun-helpers.js';

const BIN = join(repoRoot(), 'bin', 'hangar');
const NETWORK = { bridge: 'hgke2e0', ipv4Cidr: '10.199.0.0/16', ipv6Net: 0xe2e, netnsPrefix: 'hke2e-', nftTable: 'hangar_hgke2e0' };
const unavailable = crunClusterUnavailable();

const runCli = (args: string[], env: NodeJS.ProcessEnv) => runCommand(BIN, args, env);

function crunContainers(root: string): string[] {
  if (!existsSync(root)) return [];
  const out = spawnSync('crun', ['--root', root, 'list', '-q'], { encoding: 'utf8' });
  return out.stdout.split('\n').filter(Boolean);
}

describe('hangar up (crun) and the CLI on a real machine', { skip: unavailable, timeout: 180_000 }, () => {
  let dir: string;
  let up: ChildProcess;
  let env: NodeJS.ProcessEnv;
  let registry: TestRegistry;
  let image: string;
  let upOutput = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-e2e-crun-'));
    registry = await startRegistry();
    const layout = join(dir, 'layout');
    buildBusyboxImage({ dir: layout, tag: '1', cmd: ['sh', '-c', 'echo e2e-started; exec httpd -f -p 8080 -h /www'], files: { 'www/index.html': 'hello from e2e\n' } });
    await registry.push(layout, 'e2e:1');
    image = `${registry.host}/e2e:1`;
    const apiPort = await freeLoopbackPort();
    const agentPort = await freeLoopbackPort();
    const proxyPort = await freeLoopbackPort();
    env = { ...process.env, HANGAR_CONFIG_DIR: join(dir, 'cli'), HANGAR_AGENT_NETWORK: JSON.stringify(NETWORK) };
    delete env.HANGAR_API_URL;
    delete env.HANGAR_API_TOKEN;
    up = spawn(BIN, ['up', '--data-dir', join(dir, 'data'), '--api-listen', `127.0.0.1:${apiPort}`, '--agent-listen', `127.0.0.1:${agentPort}`, '--proxy-listen', `127.0.0.1:${proxyPort}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForUp(up, (chunk) => (upOutput += chunk));
  });

  after(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGKILL');
      await new Promise((r) => up.once('exit', r));
    }
    // Whatever a failed run left: containers, then the test's own bridge, tables and namespaces.
    const root = join(dir, 'data', 'agent', 'runtime');
    for (const id of crunContainers(root)) spawnSync('crun', ['--root', root, 'delete', '--force', id]);
    spawnSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    await new HostNetwork({ logger: silentLogger, stateDir: join(dir, 'net-cleanup'), ...NETWORK, dnsPort: 0 }).destroyHostLevel().catch(() => {});
    await registry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('up says which driver runs machines', () => {
    assert.match(upOutput, /driver crun/);
  });

  test('apps create, machine run, HTTP on the private IP, logs, stop, destroy; SIGTERM leaves no container', async () => {
    const created = await runCli(['apps', 'create', 'e2e'], env);
    assert.equal(created.code, 0, created.stderr);
    const run = await runCli(['machine', 'run', image, '-a', 'e2e', '--json'], env);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const machine = JSON.parse(run.stdout) as { id: string; private_ip: string; state: string };
    assert.match(machine.id, /^[0-9a-f]{14}$/);
    assert.equal((await waitHttp(machine.private_ip)).body, 'hello from e2e\n');

    const logs = await runCli(['logs', '-a', 'e2e', '--no-tail'], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /e2e-started/);

    const stop = await runCli(['machine', 'stop', machine.id, '-a', 'e2e'], env);
    assert.equal(stop.code, 0, stop.stderr);
    await assert.rejects(waitHttp(machine.private_ip, 300));
    const destroy = await runCli(['machine', 'destroy', machine.id, '-a', 'e2e'], env);
    assert.equal(destroy.code, 0, destroy.stderr);

    // a running machine at shutdown: SIGTERM stops up and its agent; no container stays behind
    const second = await runCli(['machine', 'run', image, '-a', 'e2e', '--json'], env);
    assert.equal(second.code, 0, second.stderr);
    const root = join(dir, 'data', 'agent', 'runtime');
    assert.equal(crunContainers(root).length, 1);
    up.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => up.once('exit', (c) => r(c)));
    assert.equal(code, 0, upOutput);
    assert.deepEqual(crunContainers(root), [], 'no containers left after SIGTERM');
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').filter((line) => line.includes(` ${join(dir, 'data')}`));
    assert.deepEqual(mounts, [], 'no overlay mounts left after SIGTERM');
  });
});
