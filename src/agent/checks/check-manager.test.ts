/**
 * Health checks in a whole agent (fake driver): probes go to a loopback server of the test's own
 * (the fake driver's private IPs are not reachable), through the `resolveAddress` seam.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { AgentEvent } from '../../api-types/agent.js';
import type { CheckStatus } from '../../api-types/machine.js';
import { FakeDriver } from '../drivers/fake/fake-driver.js';
import { AgentDb } from '../store/agent-db.js';
import { spec, startTestAgent, tempDir, type TestAgent } from '../testing/agent-fixtures.js';
import { until } from '../../testkit/waiting.js';

/** A loopback HTTP server answering `/health` with `status`; can be stopped and restarted on its port. */
class Target {
  status = 200;
  hits = 0;
  port = 0;
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.hits++;
      res.writeHead(req.url === '/health' ? this.status : 404).end();
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

let tmp: ReturnType<typeof tempDir>;
let agent: TestAgent;
let target: Target;

beforeEach(async () => {
  tmp = tempDir();
  target = new Target();
  await target.start();
  agent = await startTestAgent({ dataDir: tmp.dir, checks: { resolveAddress: () => '127.0.0.1', startupRetryMs: 50 } });
});
afterEach(async () => {
  await agent.close();
  await target.stop();
  tmp.remove();
});

const db = (): AgentDb => agent.agent.manager.db;
const checksOf = (id: string): CheckStatus[] => db().getMachine(id)!.checks;
const statusOf = (id: string, name: string) => checksOf(id).find((c) => c.name === name)?.status;
/** The check lists the change log recorded for a machine, as "status,status" strings. */
const checkChanges = (id: string): string[] =>
  db().eventsAfter(0, 10_000).filter((e: AgentEvent) => e.machine_id === id && e.checks).map((e) => e.checks!.map((c) => c.status).join(',') || '-');

const httpCheckConfig = (port: number, extra: Record<string, unknown> = {}) => ({
  services: [{ protocol: 'tcp' as const, internal_port: port, checks: [{ type: 'http' as const, path: '/health', interval: '100ms', timeout: '500ms', ...extra }] }],
});
const NAME = (port: number) => `servicecheck-00-http-${port}`;

describe('health checks in the agent', () => {
  test('passing → critical when the server stops → passing again; a change is recorded only when a status changes', async () => {
    const s = spec({ config: httpCheckConfig(target.port) });
    const created = await agent.agent.manager.create(s, true);
    // The change that made the machine started carries the fresh statuses: warning, not checked yet.
    const started = created.events.find((e) => e.state === 'started')!;
    assert.deepEqual(started.checks?.map((c) => [c.name, c.status]), [[NAME(target.port), 'warning']]);

    await until('passing', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);
    assert.equal(checksOf(s.id)[0]!.output, 'HTTP GET /health: 200 OK');
    const hits = target.hits;
    await until('three more runs', () => target.hits >= hits + 3, 3000, 10);

    await target.stop();
    await until('critical', () => statusOf(s.id, NAME(target.port)) === 'critical', 3000, 10);
    assert.equal(checksOf(s.id)[0]!.output, 'HTTP GET /health: connect ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 350));

    await target.start();
    await until('passing again', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);
    target.status = 503;
    await until('503', () => checksOf(s.id)[0]!.output === 'HTTP GET /health: 503 Service Unavailable', 3000, 10);
    await new Promise((r) => setTimeout(r, 250));

    // warning (start), passing, critical (refused), passing, critical (503): nothing for repeated runs.
    assert.deepEqual(checkChanges(s.id), ['warning', 'passing', 'critical', 'passing', 'critical']);
    // The machine list the API server resyncs from carries them too.
    assert.equal(agent.agent.manager.get(s.id).checks?.[0]?.status, 'critical');
  });

  test('the grace period is respected before the first run', async () => {
    const s = spec({ config: httpCheckConfig(target.port, { grace_period: '400ms' }) });
    const startedAt = Date.now();
    await agent.agent.manager.create(s, true);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(target.hits, 0);
    assert.equal(statusOf(s.id, NAME(target.port)), 'warning');
    assert.match(checksOf(s.id)[0]!.output, /grace period 400 ms/);
    await until('passing', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);
    assert.ok(Date.now() - startedAt >= 400);
  });

  test('until the first pass, a failing check is retried fast (startup retry), not every interval', async () => {
    target.status = 503;
    const s = spec({ config: httpCheckConfig(target.port, { interval: '10s' }) });
    await agent.agent.manager.create(s, true);
    await until('critical', () => statusOf(s.id, NAME(target.port)) === 'critical', 3000, 10);
    target.status = 200;
    await until('passing within the startup retry, not the 10s interval', () => statusOf(s.id, NAME(target.port)) === 'passing', 2000, 10);
  });

  test('runners stop when the machine stops, suspends or is destroyed; statuses are cleared', async () => {
    const s = spec({ config: httpCheckConfig(target.port) });
    await agent.agent.manager.create(s, true);
    await until('passing', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);

    const stopped = await agent.agent.manager.stop(s.id);
    assert.equal(agent.agent.checks.running(s.id), false);
    assert.deepEqual(stopped.events.find((e) => e.state === 'stopping')?.checks, []);
    assert.deepEqual(checksOf(s.id), []);
    const hits = target.hits;
    const seq = db().lastSeq();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(target.hits <= hits + 1, 'no runs after stop (one may have been in flight)');
    assert.equal(db().lastSeq(), seq, 'no changes after stop');

    // Started again: a fresh run, from warning.
    await agent.agent.manager.start(s.id);
    assert.equal(agent.agent.checks.running(s.id), true);
    await until('passing after start', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);

    await agent.agent.manager.suspend(s.id);
    assert.equal(agent.agent.checks.running(s.id), false);
    assert.deepEqual(checksOf(s.id), []);

    await agent.agent.manager.start(s.id);
    await agent.agent.manager.destroy(s.id, true);
    assert.equal(agent.agent.checks.running(s.id), false);
  });

  test('a restart and an update start a new run; a workload exit ends it', async () => {
    const s = spec({ config: httpCheckConfig(target.port) });
    await agent.agent.manager.create(s, true);
    await until('passing', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);
    const restarted = await agent.agent.manager.restart(s.id);
    assert.equal(restarted.events.at(-1)!.checks?.[0]?.status, 'warning');
    await until('passing after restart', () => statusOf(s.id, NAME(target.port)) === 'passing', 3000, 10);

    // An update to a top-level tcp check: the new version's names.
    const next = { ...s, version: '01J0000000000000000000000A', config: { ...s.config, services: [], checks: { alive: { type: 'tcp' as const, port: target.port, interval: '100ms' } } } };
    await agent.agent.manager.update(next, true);
    await until('top-level check passing', () => statusOf(s.id, 'alive') === 'passing', 3000, 10);
    assert.deepEqual(checksOf(s.id).map((c) => c.name), ['alive']);
    assert.equal(checksOf(s.id)[0]!.output, `TCP connect to port ${target.port}: connected`);
  });

  test('a machine without checks has none and no runner', async () => {
    const s = spec();
    const created = await agent.agent.manager.create(s, true);
    assert.equal(agent.agent.checks.running(s.id), false);
    assert.deepEqual(created.machine.checks, []);
    assert.ok(created.events.every((e) => e.checks === undefined));
  });

  test('after an agent restart, statuses of running machines stand and checks resume at once', async () => {
    // An agent that does not own its driver, so the driver (and its running machine) outlives it.
    const driver = new FakeDriver();
    await agent.close();
    agent = await startTestAgent({ dataDir: tmp.dir, driver, closeDriver: false, checks: { resolveAddress: () => '127.0.0.1', startupRetryMs: 50 } });
    const s = spec({ config: httpCheckConfig(target.port, { grace_period: '5s', interval: '5s' }) });
    await agent.agent.manager.create(s, true);
    // Drive the status to passing directly (the grace period holds the runner back).
    db().setChecks(s.id, s.version, [{ name: NAME(target.port), status: 'passing', output: 'x', updated_at: new Date().toISOString() }]);
    await agent.close();
    target.status = 500;
    agent = await startTestAgent({ dataDir: tmp.dir, driver, checks: { resolveAddress: () => '127.0.0.1', startupRetryMs: 50 } });
    assert.equal(agent.agent.manager.get(s.id).state, 'started');
    assert.equal(agent.agent.checks.running(s.id), true);
    // No grace period on resume: the failing server is noticed well before 5 s.
    await until('critical at once', () => statusOf(s.id, NAME(target.port)) === 'critical', 2000, 10);
  });
});

describe('agent db: check statuses', () => {
  test('setChecks writes a numbered change only for the current started run; replays carry checks', () => {
    const dir = tempDir();
    const store = new AgentDb(dir.dir);
    try {
      const s = spec({ config: { checks: { a: { type: 'tcp', port: 1 } } } });
      store.change({ id: s.id, state: 'created', spec: s });
      const ok: CheckStatus[] = [{ name: 'a', status: 'passing', output: 'ok', updated_at: 'now' }];
      assert.equal(store.setChecks(s.id, s.version, ok), undefined, 'not started');
      store.change({ id: s.id, state: 'started' });
      assert.equal(store.getMachine(s.id)!.checks[0]!.status, 'warning');
      assert.equal(store.setChecks(s.id, 'other-version', ok), undefined, 'another version');
      const change = store.setChecks(s.id, s.version, ok)!;
      assert.equal(change.event.seq, store.lastSeq());
      assert.equal(change.event.state, 'started');
      assert.deepEqual(change.event.checks, ok);
      assert.equal(store.getMachine(s.id)!.seq, change.event.seq);
      assert.deepEqual(store.eventsAfter(change.event.seq - 1)[0]!.checks, ok);
      // Leaving started clears them in the same change.
      const stop = store.change({ id: s.id, state: 'stopping' });
      assert.deepEqual(stop.event.checks, []);
      assert.deepEqual(store.getMachine(s.id)!.checks, []);
      // A change that does not touch them carries none.
      assert.equal(store.change({ id: s.id, state: 'stopped' }).event.checks, undefined);
    } finally {
      store.close();
      dir.remove();
    }
  });
});
