/**
 * End to end, as a user would: `bin/hangar up` in its own process (API server + agent child), an
 * unmodified third-party Fly Machines API client from npm (`fly-admin`) walking the lifecycle, the
 * `hangar` CLI finding its token without configuration, and a clean shutdown on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../../src/testkit/paths.js';
import { childrenOf, cmdline, runCommand, waitForUp } from '../../src/testkit/processes.js';
import { freeLoopbackPort as freePort } from '../../src/testkit/registry.js';
import { until } from '../../src/testkit/waiting.js';

const require = createRequire(import.meta.url);
const BIN = join(repoRoot(), 'bin', 'hangar');
const IMAGE = 'registry.example.test/hello:1.0';

interface FlyAdminClient {
  App: {
    createApp(p: { app_name: string; org_slug: string }): Promise<unknown>;
    getApp(name: string): Promise<{ name: string; organization: { slug: string } }>;
    listApps(org: string): Promise<{ total_apps: number; apps: { name: string }[] }>;
    deleteApp(name: string): Promise<unknown>;
  };
  Machine: Record<string, (payload: Record<string, unknown>) => Promise<any>>;
}


const runCli = (args: string[], env: NodeJS.ProcessEnv) => runCommand(BIN, args, env, 30_000);

/** The status the proxy answers for one request to `host` (node:http keeps the Host header as given). */
function proxyStatus(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/', headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

describe('hangar up with an unmodified Fly client and the CLI', () => {
  let dir: string;
  let up: ChildProcess;
  let apiUrl: string;
  let agentPort: number;
  let proxyPort: number;
  let httpsPort: number;
  let token: string;
  let env: NodeJS.ProcessEnv;
  let upOutput = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-e2e-'));
    const apiPort = await freePort();
    agentPort = await freePort();
    proxyPort = await freePort();
    httpsPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    env = { ...process.env, HANGAR_CONFIG_DIR: join(dir, 'cli'), HANGAR_API_URL: '', HANGAR_API_TOKEN: '' };
    delete env.HANGAR_API_URL;
    delete env.HANGAR_API_TOKEN;
    up = spawn(
      BIN,
      ['up', '--driver', 'fake', '--data-dir', join(dir, 'data'), '--api-listen', `127.0.0.1:${apiPort}`, '--agent-listen', `127.0.0.1:${agentPort}`, '--proxy-listen', `127.0.0.1:${proxyPort}`, '--https-listen', `127.0.0.1:${httpsPort}`, '--region', 'ams', '--proxy-threads', '2'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await waitForUp(up, (chunk) => (upOutput += chunk));
    token = readFileSync(join(dir, 'data', 'admin-token'), 'utf8').trim();
  });

  after(async () => {
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGKILL');
      await new Promise((r) => up.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('the fake driver says so when it starts', () => {
    assert.match(upOutput, /fake/i);
  });

  test('the proxy runs with it and names the app it looked for', async () => {
    // fetch() would replace the Host header; node:http sends it as given.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port: proxyPort, path: '/', headers: { host: 'nobody.localhost' } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      }).on('error', reject);
    });
    assert.equal(status, 404);
    assert.match(body, /"nobody"/);
  });

  test('with --https-listen the proxy also serves TLS, a certificate per app host', async () => {
    assert.match(upOutput, new RegExp(`hangar: proxy http://127\\.0\\.0\\.1:${proxyPort} and https://127\\.0\\.0\\.1:${httpsPort} routes`));
    const { status, body, subject } = await new Promise<{ status: number; body: string; subject: string }>((resolve, reject) => {
      // The CA is the proxy's own (self-signed, in the data dir): not checked here, only the name.
      httpsGet({ host: '127.0.0.1', port: httpsPort, path: '/', servername: 'nobody.localhost', headers: { host: 'nobody.localhost' }, rejectUnauthorized: false }, (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, subject: String(cert.subjectaltname ?? '') }));
      }).on('error', reject);
    });
    assert.equal(status, 404);
    assert.match(body, /"nobody"/);
    assert.match(subject, /DNS:nobody\.localhost/);
  });

  test('the proxy is a process of its own, restarted when it dies', async () => {
    const proxyPid = () => childrenOf(up.pid!).find((pid) => cmdline(pid).includes(' proxy '));
    const first = proxyPid();
    assert.ok(first, 'hangar up has a `hangar proxy` child');
    assert.match(cmdline(first), / --threads 2( |$)/, '--proxy-threads reaches the proxy');
    process.kill(first, 'SIGKILL');
    const answered = await until('the restarted proxy to answer', () => proxyStatus(proxyPort, 'nobody.localhost').catch(() => undefined), 10_000, 100);
    assert.equal(answered, 404, 'the restarted proxy serves again');
    const second = proxyPid();
    assert.ok(second, 'a `hangar proxy` child runs again');
    assert.notEqual(second, first);
  });

  test('fly-admin walks the machine lifecycle', async () => {
    const Client = require('fly-admin/dist/client.js').default as new (token: string, o: { apiUrl: string }) => FlyAdminClient;
    const fly = new Client(token, { apiUrl });
    await fly.App.createApp({ app_name: 'e2e-app', org_slug: 'personal' });
    assert.equal((await fly.App.getApp('e2e-app')).organization.slug, 'personal');
    assert.ok((await fly.App.listApps('personal')).apps.some((a) => a.name === 'e2e-app'));

    const M = fly.Machine;
    const app_name = 'e2e-app';
    const created = await M.createMachine!({ app_name, name: 'first', region: 'ams', config: { image: IMAGE, env: { HELLO: 'world' }, guest: { cpus: 1, memory_mb: 256, cpu_kind: 'shared' } } });
    const machine_id = created.id as string;
    assert.equal(created.region, 'ams');
    await M.waitMachine!({ app_name, machine_id, state: 'started', timeout: '10s' });
    assert.equal((await M.listMachines!(app_name as never)).length, 1);

    await M.stopMachine!({ app_name, machine_id });
    await M.waitMachine!({ app_name, machine_id, state: 'stopped', instance_id: created.instance_id, timeout: '10' });
    await M.startMachine!({ app_name, machine_id });
    await M.waitMachine!({ app_name, machine_id, state: 'started', timeout: '10' });
    await M.restartMachine!({ app_name, machine_id });

    const updated = await M.updateMachine!({ app_name, machine_id, config: { image: `${IMAGE}-2`, env: { HELLO: 'again' } } });
    assert.notEqual(updated.version, created.version);
    const versions = await M.listVersions!({ app_name, machine_id });
    assert.equal(versions.length, 2);
    const events = await M.listEvents!({ app_name, machine_id });
    assert.ok(events.length >= 4, `expected lifecycle events, got ${JSON.stringify(events)}`);
    assert.ok(events.some((e: { type: string }) => e.type === 'update'));

    const procs = await M.listProcesses!({ app_name, machine_id });
    assert.ok(Array.isArray(procs) && procs.length > 0);
    await M.signalMachine!({ app_name, machine_id, signal: 'SIGHUP' });

    await M.cordonMachine!({ app_name, machine_id });
    assert.equal((await M.getMachine!({ app_name, machine_id })).cordoned, true);
    await M.uncordonMachine!({ app_name, machine_id });

    const lease = await M.acquireLease!({ app_name, machine_id, ttl: 30, description: 'e2e' });
    assert.equal(lease.status, 'success');
    assert.match(lease.data.nonce, /^[0-9a-f]{12}$/);
    assert.equal((await M.getLease!({ app_name, machine_id })).data.nonce, lease.data.nonce);
    await assert.rejects(M.stopMachine!({ app_name, machine_id }), /409/);

    await assert.rejects(M.deleteMachine!({ app_name, machine_id }), /409|412/);
    const raw = await fetch(`${apiUrl}/v1/apps/${app_name}/machines/${machine_id}?kill=true`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}`, 'fly-machine-lease-nonce': lease.data.nonce },
    });
    assert.equal(raw.status, 200);
    await M.waitMachine!({ app_name, machine_id, state: 'destroyed', timeout: '10' });
    await fly.App.deleteApp('e2e-app');
  });

  test('the CLI finds the token without configuration and drives machines', async () => {
    const printed = await runCli(['auth', 'token'], env);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout.trim(), token);

    assert.equal((await runCli(['apps', 'create', 'cli-app'], env)).code, 0);
    const run = await runCli(['machine', 'run', IMAGE, '-a', 'cli-app', '--name', 'web-1', '-e', 'A=1'], env);
    assert.equal(run.code, 0, run.stderr);
    const listed = await runCli(['machine', 'list', '-a', 'cli-app', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const machines = JSON.parse(listed.stdout) as { id: string; name: string; state: string }[];
    assert.equal(machines.length, 1);
    assert.equal(machines[0]!.name, 'web-1');
    assert.equal(machines[0]!.state, 'started');
    const id = machines[0]!.id;

    const exec = await runCli(['machine', 'exec', id, 'echo from-exec', '-a', 'cli-app'], env);
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(exec.stdout, /from-exec/);
    assert.equal((await runCli(['machine', 'stop', id, '-a', 'cli-app'], env)).code, 0);
    const status = await runCli(['machine', 'status', id, '-a', 'cli-app'], env);
    assert.match(status.stdout, /stopped/);

    const logs = await runCli(['logs', '-a', 'cli-app', '--no-tail'], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, new RegExp(`app\\[${id}\\] ams \\[err\\] fake: workload exited`));

    const missing = await runCli(['machine', 'start', '0123456789abcd', '-a', 'cli-app'], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /Error: .*not found/);
    assert.equal((await runCli(['machine', 'destroy', id, '-a', 'cli-app', '--force'], env)).code, 0);
  });

  test('SIGTERM shuts everything down cleanly', async () => {
    const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
    up.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 15_000))]);
    assert.equal(code, 0, `hangar up exit: ${code}\n${upOutput}`);
    await assert.rejects(fetch(`http://127.0.0.1:${agentPort}/agent/v1/info`), 'the agent child stopped too');
    await assert.rejects(proxyStatus(proxyPort, 'nobody.localhost'), 'the proxy child stopped too');
  });
});

describe('hangar up with a bad proxy flag', () => {
  test('--proxy-threads out of range fails at once, naming the flag, the value and the range', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hangar-e2e-threads-'));
    const apiPort = await freePort();
    try {
      const up = await runCommand(BIN, ['up', '--driver', 'fake', '--data-dir', join(dir, 'data'), '--api-listen', `127.0.0.1:${apiPort}`, '--proxy-threads', '0'],
        { ...process.env, HANGAR_CONFIG_DIR: join(dir, 'cli') }, 60_000);
      assert.notEqual(up.code, 0);
      assert.match(up.stderr, /--proxy-threads: expected a whole number of threads from 1 to 16 .*got "0"/);
      assert.doesNotMatch(up.stdout + up.stderr, /API server/, 'nothing was started');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hangar up with its proxy port taken', () => {
  test('fails with a message naming the flag, and leaves no process behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hangar-e2e-busy-'));
    const blocker = createServer(() => {});
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busyPort = (blocker.address() as AddressInfo).port;
    const apiPort = await freePort();
    const agentPort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, HANGAR_CONFIG_DIR: join(dir, 'cli') };
    try {
      const up = await runCommand(BIN, ['up', '--driver', 'fake', '--data-dir', join(dir, 'data'), '--api-listen', `127.0.0.1:${apiPort}`,
        '--agent-listen', `127.0.0.1:${agentPort}`, '--proxy-listen', `127.0.0.1:${busyPort}`], env, 60_000);
      assert.notEqual(up.code, 0);
      assert.match(up.stderr, new RegExp(`hangar proxy: cannot listen on 127\\.0\\.0\\.1:${busyPort}: another process listens there`));
      assert.match(up.stderr, /the proxy did not start .*--proxy-listen/);
      assert.doesNotMatch(up.stderr, /restarting/, 'a proxy that never came up is not restarted');
      await assert.rejects(fetch(`http://127.0.0.1:${apiPort}/v1/apps`), 'the API server is gone');
      await assert.rejects(fetch(`http://127.0.0.1:${agentPort}/agent/v1/info`), 'the agent is gone');
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
