/**
 * The one suite every driver passes (Hono's `common.case.test.ts` habit): each driver's test file
 * calls `runDriverConformance` with a factory and a small adapter that turns a generic intent ("a
 * workload that exits after N ms with code C") into a spec that driver understands, e.g. metadata
 * keys for `fake`, an `init.exec` of a busybox command for `crun`. A driver that cannot pass a case
 * lists it in `skip` with the reason, and the reason shows up in the test output.
 * @module
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentMachineSpec } from '../../api-types/agent.js';
import { HangarError } from '../../core/errors.js';
import { newMachineId, newUlid } from '../../core/ids.js';
import { SIGNALS } from '../../core/signals.js';
import { rejectsWith } from '../../testkit/assertions.js';
import type { Driver, ExitInfo } from './driver.js';

export interface ConformanceSpecs {
  /** Runs until stopped; dies from SIGINT/SIGTERM/SIGKILL like a process with default handlers. */
  longRunning(base: AgentMachineSpec): AgentMachineSpec;
  /** Exits by itself `ms` after it starts, with `exitCode`. */
  exitsAfter(base: AgentMachineSpec, ms: number, exitCode: number): AgentMachineSpec;
  /** Runs until killed and ignores every catchable signal. */
  ignoresSignals(base: AgentMachineSpec): AgentMachineSpec;
  /** Cannot start; `start()` must throw (the message need not match). */
  failsToStart(base: AgentMachineSpec, message: string): AgentMachineSpec;
}

export interface DriverConformanceOptions {
  name: string;
  newDriver: () => Driver | Promise<Driver>;
  specs: ConformanceSpecs;
  skip?: { reason: string; tests: ConformanceTest[] }[];
}

export const CONFORMANCE_TESTS = [
  'create prepares a machine without starting it, idempotently',
  'inspect of an unknown id answers absent',
  'private addresses are unique per machine and kept across versions',
  'start runs the workload',
  'start of a workload that cannot start throws',
  'a workload that exits by itself is reported to onExit',
  'stop sends the signal and resolves with a requested exit, without onExit',
  'stop escalates to SIGKILL after the timeout when the signal is ignored',
  'stop of a machine that is not running resolves',
  'signal SIGKILL ends the workload and is reported to onExit',
  'signal to a machine that is not running throws',
  'exec runs a command and answers stdout, stderr and the exit code',
  'exec passes stdin',
  'exec of an unknown command answers exit code 127',
  'exec that outlives its timeout is killed and answers a timeout error',
  'ps lists the workload',
  'suspend pauses and resume continues',
  'destroy removes everything, is idempotent and does not report an exit',
  'a machine can start again after it stopped',
  'recover reports known machines, re-attaches onExit and removes unknown ones',
] as const;
export type ConformanceTest = (typeof CONFORMANCE_TESTS)[number];

/** The smallest valid spec; adapters add what their driver needs. */
export function baseSpec(overrides: Partial<AgentMachineSpec> = {}): AgentMachineSpec {
  const id = overrides.id ?? newMachineId();
  return {
    id,
    name: `conformance-${id}`,
    app_name: 'conformance',
    org_slug: 'personal',
    org_id: 4242,
    region: 'local',
    version: newUlid(),
    config: { image: 'docker.io/library/busybox:latest' },
    ...overrides,
  };
}

/** Collects onExit reports so a test can wait for one. */
class ExitRecorder {
  readonly exits: { id: string; exit: ExitInfo }[] = [];
  private waiters: { id: string; resolve: (e: ExitInfo) => void }[] = [];

  readonly listener = (id: string, exit: ExitInfo) => {
    this.exits.push({ id, exit });
    for (const w of this.waiters.filter((w) => w.id === id)) w.resolve(exit);
    this.waiters = this.waiters.filter((w) => w.id !== id);
  };

  wait(id: string, timeoutMs = 5000): Promise<ExitInfo> {
    const seen = this.exits.find((e) => e.id === id);
    if (seen) return Promise.resolve(seen.exit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no exit reported for ${id} within ${timeoutMs}ms`)), timeoutMs);
      this.waiters.push({ id, resolve: (e) => { clearTimeout(timer); resolve(e); } });
    });
  }

  for(id: string): ExitInfo[] {
    return this.exits.filter((e) => e.id === id).map((e) => e.exit);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runDriverConformance(options: DriverConformanceOptions): void {
  const skipped = new Map<string, string>();
  for (const entry of options.skip ?? []) for (const name of entry.tests) skipped.set(name, entry.reason);
  const { specs } = options;

  describe(`driver conformance: ${options.name}`, () => {
    const it = (name: ConformanceTest, body: (ctx: { driver: Driver; exits: ExitRecorder; track: (spec: AgentMachineSpec) => AgentMachineSpec }) => Promise<void>) => {
      const reason = skipped.get(name);
      test(name, reason ? { skip: reason } : { timeout: 10_000 }, async () => {
        const driver = await options.newDriver();
        const exits = new ExitRecorder();
        driver.onExit(exits.listener);
        const created: string[] = [];
        try {
          await body({ driver, exits, track: (spec) => (created.push(spec.id), spec) });
        } finally {
          for (const id of created) await driver.destroy(id).catch(() => {});
          await driver.close();
        }
      });
    };

    it('create prepares a machine without starting it, idempotently', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      const first = await driver.create(spec);
      const second = await driver.create(spec);
      assert.match(first.privateIp, /:/, 'a private IPv6 address');
      assert.equal(second.privateIp, first.privateIp);
      assert.equal((await driver.inspect(spec.id)).state, 'created');
    });

    it('inspect of an unknown id answers absent', async ({ driver }) => {
      assert.deepEqual(await driver.inspect(newMachineId()), { state: 'absent' });
    });

    it('private addresses are unique per machine and kept across versions', async ({ driver, track }) => {
      const ips = new Set<string>();
      const specsMade = Array.from({ length: 5 }, () => track(specs.longRunning(baseSpec())));
      for (const spec of specsMade) ips.add((await driver.create(spec)).privateIp);
      assert.equal(ips.size, 5);
      const first = specsMade[0]!;
      const before = (await driver.create(first)).privateIp;
      const after = (await driver.create({ ...first, version: newUlid() })).privateIp;
      assert.equal(after, before);
    });

    it('start runs the workload', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      assert.equal((await driver.inspect(spec.id)).state, 'running');
    });

    it('start of a workload that cannot start throws', async ({ driver, track }) => {
      const spec = track(specs.failsToStart(baseSpec(), 'boom: no such entrypoint'));
      await driver.create(spec);
      await assert.rejects(driver.start(spec.id), (err) => err instanceof HangarError);
      assert.notEqual((await driver.inspect(spec.id)).state, 'running');
    });

    it('a workload that exits by itself is reported to onExit', async ({ driver, exits, track }) => {
      const spec = track(specs.exitsAfter(baseSpec(), 150, 3));
      await driver.create(spec);
      await driver.start(spec.id);
      const exit = await exits.wait(spec.id);
      assert.equal(exit.exit_code, 3);
      assert.equal(exit.requested_stop, false);
      assert.ok(exit.exited_at > 0);
      const status = await driver.inspect(spec.id);
      assert.equal(status.state, 'exited');
    });

    it('stop sends the signal and resolves with a requested exit, without onExit', async ({ driver, exits, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const exit = await driver.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 3000 });
      assert.equal(exit.requested_stop, true);
      assert.notEqual((await driver.inspect(spec.id)).state, 'running');
      await sleep(50);
      assert.deepEqual(exits.for(spec.id), []);
    });

    it('stop escalates to SIGKILL after the timeout when the signal is ignored', async ({ driver, track }) => {
      const spec = track(specs.ignoresSignals(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const began = Date.now();
      const exit = await driver.stop(spec.id, { signal: SIGNALS.SIGINT, timeoutMs: 300 });
      const took = Date.now() - began;
      assert.ok(took >= 250, `stop waited ${took}ms, expected about 300ms before SIGKILL`);
      assert.ok(exit.signal === SIGNALS.SIGKILL || exit.exit_code === 137, `killed: ${JSON.stringify(exit)}`);
      assert.equal(exit.requested_stop, true);
    });

    it('stop of a machine that is not running resolves', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      const exit = await driver.stop(spec.id, { signal: SIGNALS.SIGINT, timeoutMs: 100 });
      assert.equal(typeof exit.exit_code, 'number');
    });

    it('signal SIGKILL ends the workload and is reported to onExit', async ({ driver, exits, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      await driver.signal(spec.id, SIGNALS.SIGKILL);
      const exit = await exits.wait(spec.id);
      assert.equal(exit.signal, SIGNALS.SIGKILL);
      assert.equal(exit.requested_stop, false);
    });

    it('signal to a machine that is not running throws', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await assert.rejects(driver.signal(spec.id, SIGNALS.SIGUSR1), (err) => err instanceof HangarError);
    });

    it('exec runs a command and answers stdout, stderr and the exit code', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const echo = await driver.exec(spec.id, { command: ['echo', 'hello', 'world'], timeoutMs: 5000 });
      assert.deepEqual(echo, { stdout: 'hello world\n', stderr: '', exit_code: 0, exit_signal: 0 });
      const failing = await driver.exec(spec.id, { command: ['sh', '-c', 'echo out; false || exit 3; echo never'], timeoutMs: 5000 });
      assert.equal(failing.exit_code, 3);
      assert.match(failing.stdout, /^out\n/);
    });

    it('exec passes stdin', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const cat = await driver.exec(spec.id, { command: ['cat'], stdin: 'piped\n', timeoutMs: 5000 });
      assert.equal(cat.stdout, 'piped\n');
      assert.equal(cat.exit_code, 0);
    });

    it('exec of an unknown command answers exit code 127', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const result = await driver.exec(spec.id, { command: ['no-such-command-xyz'], timeoutMs: 5000 });
      assert.equal(result.exit_code, 127);
      assert.match(result.stderr, /no-such-command-xyz/);
    });

    it('exec that outlives its timeout is killed and answers a timeout error', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const began = Date.now();
      await rejectsWith(driver.exec(spec.id, { command: ['sleep', '5'], timeoutMs: 200 }), 'timeout', /\["sleep","5"\] did not finish within 200ms and was killed/);
      assert.ok(Date.now() - began < 2000, 'the timeout cut the command short');
      const after = await driver.exec(spec.id, { command: ['echo', 'still here'], timeoutMs: 5000 });
      assert.equal(after.stdout.trim(), 'still here', 'the machine keeps running after a timed-out exec');
    });

    it('ps lists the workload', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      const processes = await driver.ps(spec.id);
      assert.ok(processes.length >= 1);
      for (const p of processes) {
        assert.equal(typeof p.pid, 'number');
        assert.equal(typeof p.command, 'string');
        assert.ok(Array.isArray(p.listen_sockets));
      }
    });

    it('suspend pauses and resume continues', async ({ driver, exits, track }) => {
      if (!driver.capabilities.suspend) return;
      const spec = track(specs.exitsAfter(baseSpec(), 300, 0));
      await driver.create(spec);
      await driver.start(spec.id);
      await driver.suspend(spec.id);
      assert.equal((await driver.inspect(spec.id)).state, 'paused');
      await sleep(400);
      assert.deepEqual(exits.for(spec.id), [], 'a paused workload does not run to its exit');
      await driver.resume(spec.id);
      assert.equal((await driver.inspect(spec.id)).state, 'running');
      const exit = await exits.wait(spec.id);
      assert.equal(exit.exit_code, 0);
    });

    it('destroy removes everything, is idempotent and does not report an exit', async ({ driver, exits, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      await driver.destroy(spec.id);
      await driver.destroy(spec.id);
      await driver.destroy(newMachineId());
      assert.deepEqual(await driver.inspect(spec.id), { state: 'absent' });
      await sleep(50);
      assert.deepEqual(exits.for(spec.id), []);
    });

    it('a machine can start again after it stopped', async ({ driver, track }) => {
      const spec = track(specs.longRunning(baseSpec()));
      await driver.create(spec);
      await driver.start(spec.id);
      await driver.stop(spec.id, { signal: SIGNALS.SIGTERM, timeoutMs: 2000 });
      await driver.start(spec.id);
      assert.equal((await driver.inspect(spec.id)).state, 'running');
    });

    it('recover reports known machines, re-attaches onExit and removes unknown ones', async ({ driver, track }) => {
      const running = track(specs.exitsAfter(baseSpec(), 400, 5));
      const idle = track(specs.longRunning(baseSpec()));
      const orphan = track(specs.longRunning(baseSpec()));
      for (const spec of [running, idle, orphan]) await driver.create(spec);
      await driver.start(running.id);
      await driver.start(orphan.id);
      // A new agent registers its own listener before recovering.
      const after = new ExitRecorder();
      driver.onExit(after.listener);
      const statuses = await driver.recover([running, idle]);
      assert.equal(statuses.get(running.id)?.state, 'running');
      assert.equal(statuses.get(idle.id)?.state, 'created');
      assert.equal(statuses.has(orphan.id), false);
      assert.deepEqual(await driver.inspect(orphan.id), { state: 'absent' });
      const exit = await after.wait(running.id);
      assert.equal(exit.exit_code, 5);
    });
  });
}
