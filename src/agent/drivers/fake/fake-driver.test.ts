import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import { HangarError } from '../../../core/errors.js';
import { SIGNALS } from '../../../core/signals.js';
import { baseSpec, runDriverConformance } from '../driver.conformance.js';
import type { ExitInfo } from '../driver.js';
import { createDriver } from '../registry.js';
import { FakeDriver } from './fake-driver.js';
import { tokenize } from './fake-exec.js';
import { FAKE_KEYS } from './fake-script.js';

/** Adds fake script keys to a spec's metadata. */
function scripted(spec: AgentMachineSpec, meta: Record<string, string>): AgentMachineSpec {
  return { ...spec, config: { ...spec.config, metadata: { ...spec.config.metadata, ...meta } } };
}

runDriverConformance({
  name: 'fake',
  newDriver: () => new FakeDriver(),
  specs: {
    longRunning: (base) => base,
    exitsAfter: (base, ms, code) => scripted(base, { [FAKE_KEYS.runFor]: `${ms}ms`, [FAKE_KEYS.exitCode]: String(code) }),
    ignoresSignals: (base) => scripted(base, { [FAKE_KEYS.ignoreSignals]: 'true' }),
    failsToStart: (base, message) => scripted(base, { [FAKE_KEYS.startError]: message }),
  },
});

function waitExit(driver: FakeDriver): Promise<{ id: string; exit: ExitInfo }> {
  return new Promise((resolve) => driver.onExit((id, exit) => resolve({ id, exit })));
}

describe('fake driver specifics', () => {
  test('is registered under the name "fake"', () => {
    const driver = createDriver('fake', { dataDir: '/nonexistent', hostId: 'h1', logger: { info() {}, warn() {}, error() {}, child() { return this; } } });
    assert.equal(driver.name, 'fake');
    assert.throws(() => createDriver('nope', { dataDir: '', hostId: '', logger: undefined as never }), /unknown driver "nope"; choose one of: crun, fake, runc/);
  });

  test('a malformed script key is refused at create, naming the key', async () => {
    const driver = new FakeDriver();
    await assert.rejects(driver.create(scripted(baseSpec(), { [FAKE_KEYS.runFor]: 'soon' })), (err: unknown) => {
      assert.ok(err instanceof HangarError);
      assert.equal(err.code, 'invalid_argument');
      assert.match(err.message, /config\.metadata\.hangar_fake_run_for/);
      return true;
    });
  });

  test('start_error fails with failed_precondition and the scripted message', async () => {
    const driver = new FakeDriver();
    const spec = scripted(baseSpec(), { [FAKE_KEYS.startError]: 'image has no entrypoint' });
    await driver.create(spec);
    await assert.rejects(driver.start(spec.id), { code: 'failed_precondition', message: 'image has no entrypoint' });
    assert.equal((await driver.inspect(spec.id)).state, 'created');
  });

  test('oom reports oom_killed with exit 137', async () => {
    const driver = new FakeDriver();
    const spec = scripted(baseSpec(), { [FAKE_KEYS.runFor]: '30ms', [FAKE_KEYS.oom]: 'true' });
    await driver.create(spec);
    const exited = waitExit(driver);
    await driver.start(spec.id);
    const { exit } = await exited;
    assert.equal(exit.oom_killed, true);
    assert.equal(exit.exit_code, 137);
    assert.equal(exit.signal, SIGNALS.SIGKILL);
  });

  test('start_delay delays start; a stop meanwhile makes the start fail', async () => {
    const driver = new FakeDriver();
    const spec = scripted(baseSpec(), { [FAKE_KEYS.startDelay]: '150ms' });
    await driver.create(spec);
    const began = Date.now();
    await driver.start(spec.id);
    assert.ok(Date.now() - began >= 140);
    await driver.stop(spec.id, { signal: SIGNALS.SIGINT, timeoutMs: 100 });
    const starting = driver.start(spec.id);
    await driver.stop(spec.id, { signal: SIGNALS.SIGINT, timeoutMs: 100 });
    await assert.rejects(starting, { code: 'failed_precondition' });
    assert.equal((await driver.inspect(spec.id)).state, 'exited');
  });

  test('graceful signals follow default dispositions; trapped ones are recorded and survived', async () => {
    const driver = new FakeDriver();
    const spec = scripted(baseSpec(), { [FAKE_KEYS.trapSignals]: 'SIGUSR1,HUP' });
    await driver.create(spec);
    await driver.start(spec.id);
    await driver.signal(spec.id, SIGNALS.SIGUSR1);
    await driver.signal(spec.id, SIGNALS.SIGHUP);
    assert.equal((await driver.inspect(spec.id)).state, 'running');
    assert.deepEqual(driver.signalsReceived(spec.id), [SIGNALS.SIGUSR1, SIGNALS.SIGHUP]);
    const exited = waitExit(driver);
    await driver.signal(spec.id, SIGNALS.SIGTERM);
    const { exit } = await exited;
    assert.deepEqual({ code: exit.exit_code, signal: exit.signal, requested: exit.requested_stop }, { code: 143, signal: 15, requested: false });
  });

  test('private addresses look like 6PN and carry the org prefix', async () => {
    const driver = new FakeDriver({ hostId: 'host-a' });
    const spec = baseSpec({ id: '3d8d413b29d089', org_id: 0x3ec2 });
    const { privateIp } = await driver.create(spec);
    assert.match(privateIp, /^fdaa:0:3ec2:[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:2$/);
    const again = await new FakeDriver({ hostId: 'host-a' }).create(spec);
    assert.equal(again.privateIp, privateIp, 'deterministic per machine and host');
  });

  test('a fresh instance recovering known machines reports them exited, like a host reboot', async () => {
    const spec = baseSpec();
    const fresh = new FakeDriver();
    const statuses = await fresh.recover([spec]);
    const status = statuses.get(spec.id);
    assert.equal(status?.state, 'exited');
    assert.equal(status.state === 'exited' && status.exit.requested_stop, false);
    await fresh.start(spec.id);
    assert.equal((await fresh.inspect(spec.id)).state, 'running');
    await fresh.close();
  });

  test('ps reports pid 1 with the init command and service sockets', async () => {
    const driver = new FakeDriver();
    const spec = baseSpec({ config: { image: 'nginx', init: { cmd: ['nginx', '-g', 'daemon off;'] }, services: [{ protocol: 'tcp', internal_port: 8080 }] } });
    await driver.create(spec);
    await driver.start(spec.id);
    const [p] = await driver.ps(spec.id);
    assert.equal(p?.pid, 1);
    assert.equal(p?.command, 'nginx -g daemon off;');
    assert.deepEqual(p?.listen_sockets, [{ proto: 'tcp', address: '0.0.0.0:8080' }]);
  });

  test('exec interpreter: scripts, env, hostname, kill on stop', async () => {
    const driver = new FakeDriver();
    const spec = baseSpec({ config: { image: 'x', env: { GREETING: 'hi' } } });
    await driver.create(spec);
    await driver.start(spec.id);
    const run = (command: string[]) => driver.exec(spec.id, { command, timeoutMs: 2000 });
    assert.equal((await run(['sh', '-c', 'true && echo "a b"; false && echo no || echo \'c\''])).stdout, 'a b\nc\n');
    assert.match((await run(['env'])).stdout, /^GREETING=hi$/m);
    assert.equal((await run(['/bin/hostname'])).stdout, `${spec.id}\n`);
    assert.equal((await run(['exit', '7'])).exit_code, 7);
    assert.deepEqual(await run(['frobnicate']), { stdout: '', stderr: 'frobnicate: not found\n', exit_code: 127, exit_signal: 0 });
    const sleeping = run(['sleep', '3']);
    await new Promise((r) => setTimeout(r, 20));
    await driver.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 100 });
    assert.deepEqual(await sleeping, { stdout: '', stderr: '', exit_code: 137, exit_signal: 9 });
  });

  test('tokenize handles quotes, escapes and operators', () => {
    assert.deepEqual(tokenize(`echo 'a;b' "c\\"d" e\\ f;x&&y||z`), [
      { word: 'echo' }, { word: 'a;b' }, { word: 'c"d' }, { word: 'e f' }, { op: ';' }, { word: 'x' }, { op: '&&' }, { word: 'y' }, { op: '||' }, { word: 'z' },
    ]);
  });
});
