/**
 * The `fake` driver: a real, registered driver that runs nothing but behaves like one. Each machine
 * follows a script read from its `config.metadata` (see `fake-script.ts` and `docs/fake-driver.md`):
 * run for a while and exit with a code, fail to start, start slowly, ignore stop signals, get
 * OOM-killed. `exec` is a tiny interpreter (`fake-exec.ts`); private addresses look like 6PN
 * (`fake-ip.ts`).
 *
 * Signals follow default Unix dispositions so the fake matches what a real driver reports: a stop or
 * a signal ends the workload with `signal = N`, `exit_code = 128 + N`, unless the script ignores or
 * traps it. SIGKILL always kills.
 *
 * State lives in memory. A *new* FakeDriver asked to `recover` machines it never saw behaves like a
 * host that rebooted: every known machine is reported `exited` (killed, exit 137 / SIGKILL, not a
 * requested stop), and the agent then applies its own rules (a machine it thought was running gets
 * an exit event and its restart policy). The *same* instance re-attaches to what it still runs,
 * which is how tests simulate an agent crash on a host that kept running.
 * @module
 */
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import type { ExecResponse, ProcessStat } from '../../../api-types/machine.js';
import { HangarError } from '../../../core/errors.js';
import { SIGNALS } from '../../../core/signals.js';
import type { Driver, DriverCapabilities, DriverStatus, ExecOptions, ExitInfo, LogLine, ReadLogsOptions, StopOptions } from '../driver.js';
import { FakeLogs } from './fake-logs.js';
import { runFakeExec } from './fake-exec.js';
import { fakePrivateIp, hostGroup } from './fake-ip.js';
import { type FakeScript, readFakeScript } from './fake-script.js';

export interface FakeDriverOptions {
  /** Names the host part of private addresses; any stable string. */
  hostId?: string;
}

type FakeStatus = 'created' | 'starting' | 'running' | 'paused' | 'exited';

interface FakeMachine {
  spec: AgentMachineSpec;
  script: FakeScript;
  privateIp: string;
  status: FakeStatus;
  exit?: ExitInfo;
  pid: number;
  startedAt: number;
  /** Bumped by every start, stop and destroy, so late timers and slow starts of an older run do nothing. */
  generation: number;
  runTimer?: NodeJS.Timeout;
  /** When the scripted exit is due (running) or how much of run_for is left (paused). */
  runDueAt?: number;
  runRemainingMs?: number;
  /** Set while `stop` waits for the workload to die; an exit in that window answers the stop. */
  stopWaiter?: (exit: ExitInfo) => void;
  execs: Set<AbortController>;
  signals: number[];
}

const KILLED_BY_REBOOT = (): ExitInfo => ({ exit_code: 137, signal: SIGNALS.SIGKILL, oom_killed: false, requested_stop: false, exited_at: Date.now() });

export class FakeDriver implements Driver {
  readonly name = 'fake';
  readonly capabilities: DriverCapabilities = { suspend: true, exec: true, signal: true, ps: true };

  private readonly machines = new Map<string, FakeMachine>();
  private readonly host: number;
  private listener: ((id: string, exit: ExitInfo) => void) | undefined;
  private nextPid = 1000;
  private closed = false;
  private readonly logs = new FakeLogs();

  constructor(options: FakeDriverOptions = {}) {
    this.host = hostGroup(options.hostId ?? 'fake');
  }

  async create(spec: AgentMachineSpec): Promise<{ privateIp: string }> {
    this.assertOpen();
    const script = readFakeScript(spec.config);
    const existing = this.machines.get(spec.id);
    if (existing) {
      if (existing.status === 'running' || existing.status === 'starting' || existing.status === 'paused') {
        throw new HangarError('failed_precondition', `fake: machine ${spec.id} is ${existing.status}; stop it before preparing a new version`);
      }
      // A new version of a stopped machine keeps its address, as on Fly.
      existing.spec = spec;
      existing.script = script;
      return { privateIp: existing.privateIp };
    }
    const machine = this.newMachine(spec, script);
    this.machines.set(spec.id, machine);
    return { privateIp: machine.privateIp };
  }

  async start(id: string): Promise<void> {
    const m = this.get(id);
    if (m.status === 'running') return;
    if (m.status === 'starting') throw new HangarError('failed_precondition', `fake: machine ${id} is already starting`);
    if (m.status === 'paused') this.end(m, killed(true), false); // a cold boot discards the snapshot
    const generation = ++m.generation;
    m.status = 'starting';
    if (m.script.startDelayMs > 0) await delay(m.script.startDelayMs);
    if (this.machines.get(id) !== m || m.generation !== generation) {
      throw new HangarError('failed_precondition', `fake: machine ${id} was stopped or destroyed while starting`);
    }
    if (m.script.startError !== undefined) {
      m.status = m.exit ? 'exited' : 'created';
      throw new HangarError('failed_precondition', m.script.startError);
    }
    m.status = 'running';
    m.pid = this.nextPid++;
    m.startedAt = Date.now();
    delete m.exit;
    m.signals = [];
    for (const line of m.spec.config.metadata?.hangar_fake_stdout?.split('\n') ?? []) this.logs.append(id, 'stdout', line);
    if (m.script.runForMs !== undefined) this.schedule(m, m.script.runForMs);
  }

  readLogs(id: string, options: ReadLogsOptions): AsyncIterable<LogLine> {
    this.get(id);
    return this.logs.read(id, options);
  }

  async stop(id: string, options: StopOptions): Promise<ExitInfo> {
    const m = this.get(id);
    if (m.status === 'starting') {
      m.generation++;
      this.end(m, killed(true), false);
      return m.exit!;
    }
    if (m.status === 'paused') {
      // A frozen workload cannot handle a signal; stopping a suspended machine discards it.
      this.end(m, killed(true), false);
      return m.exit!;
    }
    if (m.status !== 'running') return m.exit ?? { exit_code: 0, signal: 0, oom_killed: false, requested_stop: true, exited_at: Date.now() };
    m.signals.push(options.signal);
    if (options.signal === SIGNALS.SIGKILL || this.dies(m, options.signal)) {
      this.end(m, options.signal === SIGNALS.SIGKILL ? killed(true) : bySignal(options.signal, true), false);
      return m.exit!;
    }
    // The workload ignores the signal: wait for the timeout (or an exit of its own), then SIGKILL.
    return new Promise<ExitInfo>((resolve) => {
      const timer = setTimeout(() => {
        delete m.stopWaiter;
        if (m.status === 'running') this.end(m, killed(true), false);
        resolve(m.exit!);
      }, options.timeoutMs);
      m.stopWaiter = (exit) => {
        clearTimeout(timer);
        resolve({ ...exit, requested_stop: true });
      };
    });
  }

  async signal(id: string, signal: number): Promise<void> {
    const m = this.get(id);
    if (m.status !== 'running') throw new HangarError('failed_precondition', `fake: machine ${id} is not running`);
    m.signals.push(signal);
    if (signal === SIGNALS.SIGKILL) this.end(m, killed(false), true);
    else if (this.dies(m, signal)) this.end(m, bySignal(signal, false), true);
  }

  async suspend(id: string): Promise<void> {
    const m = this.get(id);
    if (m.status !== 'running') throw new HangarError('failed_precondition', `fake: machine ${id} is not running`);
    if (m.runTimer) {
      clearTimeout(m.runTimer);
      delete m.runTimer;
      m.runRemainingMs = Math.max(0, (m.runDueAt ?? Date.now()) - Date.now());
    }
    m.status = 'paused';
  }

  async resume(id: string): Promise<void> {
    const m = this.get(id);
    if (m.status !== 'paused') throw new HangarError('failed_precondition', `fake: machine ${id} is not suspended`);
    m.status = 'running';
    if (m.runRemainingMs !== undefined) {
      this.schedule(m, m.runRemainingMs);
      delete m.runRemainingMs;
    }
  }

  async exec(id: string, options: ExecOptions): Promise<ExecResponse> {
    const m = this.get(id);
    if (m.status !== 'running') throw new HangarError('failed_precondition', `fake: machine ${id} is not running`);
    const abort = new AbortController();
    m.execs.add(abort);
    try {
      return await runFakeExec(options.command, {
        stdin: options.stdin ?? '',
        timeoutMs: options.timeoutMs,
        env: { ...m.spec.config.env, FLY_MACHINE_ID: id, FLY_APP_NAME: m.spec.app_name, FLY_REGION: m.spec.region, FLY_PRIVATE_IP: m.privateIp, FLY_MACHINE_VERSION: m.spec.version },
        hostname: id,
        signal: abort.signal,
      });
    } finally {
      m.execs.delete(abort);
    }
  }

  async ps(id: string): Promise<ProcessStat[]> {
    const m = this.get(id);
    if (m.status !== 'running' && m.status !== 'paused') throw new HangarError('failed_precondition', `fake: machine ${id} is not running`);
    const init = m.spec.config.init;
    const argv = init?.exec ?? [...(init?.entrypoint ?? []), ...(init?.cmd ?? [])];
    const seconds = Math.floor((Date.now() - m.startedAt) / 1000);
    return [{
      pid: 1,
      command: argv.length > 0 ? argv.join(' ') : m.spec.config.image,
      directory: '/',
      cpu: 0,
      rss: 4096 * 1024,
      rtime: seconds,
      stime: 0,
      listen_sockets: (m.spec.config.services ?? []).map((s) => ({ proto: s.protocol, address: `0.0.0.0:${s.internal_port}` })),
    }];
  }

  async inspect(id: string): Promise<DriverStatus> {
    const m = this.machines.get(id);
    if (!m) return { state: 'absent' };
    switch (m.status) {
      case 'created':
      case 'starting':
        return { state: 'created' };
      case 'running':
        return { state: 'running', pid: m.pid };
      case 'paused':
        return { state: 'paused' };
      case 'exited':
        return { state: 'exited', exit: m.exit! };
    }
  }

  async destroy(id: string): Promise<void> {
    const m = this.machines.get(id);
    if (!m) return;
    m.generation++;
    if (m.status === 'running' || m.status === 'paused' || m.status === 'starting') this.end(m, killed(true), false);
    this.machines.delete(id);
    this.logs.forget(id);
  }

  onExit(listener: (id: string, exit: ExitInfo) => void): void {
    this.listener = listener;
  }

  async recover(known: AgentMachineSpec[]): Promise<Map<string, DriverStatus>> {
    this.assertOpen();
    const knownIds = new Set(known.map((s) => s.id));
    for (const id of [...this.machines.keys()]) if (!knownIds.has(id)) await this.destroy(id);
    const result = new Map<string, DriverStatus>();
    for (const spec of known) {
      if (!this.machines.has(spec.id)) {
        // Never seen by this instance: as after a host reboot, whatever ran is gone.
        let script: FakeScript;
        try {
          script = readFakeScript(spec.config);
        } catch {
          script = readFakeScript({ image: spec.config.image });
        }
        const m = this.newMachine(spec, script);
        m.status = 'exited';
        m.exit = KILLED_BY_REBOOT();
        this.machines.set(spec.id, m);
      }
      result.set(spec.id, await this.inspect(spec.id));
    }
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const m of this.machines.values()) {
      if (m.runTimer) clearTimeout(m.runTimer);
      for (const exec of m.execs) exec.abort();
    }
    this.listener = undefined;
  }

  /** Test helper: the signals the current run of a machine received, in order. */
  signalsReceived(id: string): number[] {
    return [...(this.machines.get(id)?.signals ?? [])];
  }

  private newMachine(spec: AgentMachineSpec, script: FakeScript): FakeMachine {
    const taken = new Set([...this.machines.values()].map((m) => m.privateIp));
    return {
      spec, script, status: 'created', pid: 0, startedAt: 0, generation: 0, execs: new Set(), signals: [],
      privateIp: fakePrivateIp(spec.org_id, spec.id, this.host, taken),
    };
  }

  private get(id: string): FakeMachine {
    this.assertOpen();
    const m = this.machines.get(id);
    if (!m) throw new HangarError('not_found', `fake: machine ${id} not found`);
    return m;
  }

  private assertOpen(): void {
    if (this.closed) throw new HangarError('unavailable', 'fake driver is closed');
  }

  /** Whether `signal` ends the workload under its script (default disposition: it does). */
  private dies(m: FakeMachine, signal: number): boolean {
    return !m.script.ignoreSignals && !m.script.trapSignals.has(signal);
  }

  private schedule(m: FakeMachine, ms: number): void {
    const generation = m.generation;
    m.runDueAt = Date.now() + ms;
    m.runTimer = setTimeout(() => {
      if (m.generation !== generation || m.status !== 'running') return;
      const exit: ExitInfo = m.script.oom
        ? { exit_code: 137, signal: SIGNALS.SIGKILL, oom_killed: true, requested_stop: false, exited_at: Date.now() }
        : { exit_code: m.script.exitCode, signal: 0, oom_killed: false, requested_stop: false, exited_at: Date.now() };
      this.end(m, exit, true);
    }, ms);
  }

  /** Ends the current run. `spontaneous` exits go to the listener unless a stop is waiting for them. */
  private end(m: FakeMachine, exit: ExitInfo, spontaneous: boolean): void {
    if (m.runTimer) clearTimeout(m.runTimer);
    delete m.runTimer;
    delete m.runDueAt;
    delete m.runRemainingMs;
    for (const exec of m.execs) exec.abort();
    m.status = 'exited';
    m.exit = exit;
    this.logs.append(m.spec.id, 'stderr', `fake: workload exited (code ${exit.exit_code}${exit.signal ? `, signal ${exit.signal}` : ''})`);
    const waiter = m.stopWaiter;
    delete m.stopWaiter;
    if (waiter) waiter(exit);
    else if (spontaneous && this.machines.get(m.spec.id) === m) this.listener?.(m.spec.id, exit);
  }
}

function killed(requested: boolean): ExitInfo {
  return { exit_code: 137, signal: SIGNALS.SIGKILL, oom_killed: false, requested_stop: requested, exited_at: Date.now() };
}

function bySignal(signal: number, requested: boolean): ExitInfo {
  return { exit_code: 128 + signal, signal, oom_killed: false, requested_stop: requested, exited_at: Date.now() };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
