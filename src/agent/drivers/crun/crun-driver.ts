/**
 * The `crun` driver: machines as OCI containers run by crun (runc when crun is missing; same code
 * path, only the binary differs). See `docs/crun-driver.md`.
 *
 * Per machine, under `<dataDir>/machines/<id>/`:
 *   machine.json   spec, resolved image and network (what recovery needs)
 *   bundle/config.json   OCI runtime config, rewritten at every start
 *   rootfs/        overlay (fresh upper per start; mounted by the shim, or by the image provider
 *                  when config.files must be written first)
 *   etc/           hosts, resolv.conf, hostname (bind-mounted read-only)
 *   run/           pid (container init, host pid; written by the runtime), exit-code (by the shim),
 *                  run.json (start times)
 *   logs/          stdout.log, stderr.log (+ .1)
 *
 * The agent never parents a container: a per-run shim (`runtime.ts`) runs `crun run` in its own
 * session and writes `run/exit-code`; the driver watches `run/` (fs.watch plus a 1 s poll) and
 * turns that file into `onExit` or into the answer of a pending `stop`.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import type { ExecResponse, ProcessStat } from '../../../api-types/machine.js';
import { HangarError } from '../../../core/errors.js';
import { silentLogger, type Logger } from '../../../core/logger.js';
import { SIGNALS } from '../../../core/signals.js';
import { type Driver, type DriverCapabilities, type DriverStatus, type ExecOptions, type ExitInfo, type ImageGcOptions, type StopOptions, type StoredImage, execTimeoutError } from '../driver.js';
import { type LogLine, readLogFiles, type ReadLogsOptions, rotateIfNeeded } from './logs.js';
import { buildOciSpec, hostsFile, machineArgv, resolvConf } from './oci-spec.js';
import { cgroupPids, monotonicUsec, oomKilledSince, processAlive, processRunning, processStats } from './procfs.js';
import type { DriverImage, DriverNetwork, ImageProvider, NetworkMachine, NetworkProvider } from './providers.js';
import { ImageLookups } from './image-lookups.js';
import { findExecutable, resolveUser, writeMachineFiles } from './rootfs.js';
import { findRuntime, OciRuntime, type ShimOverlay } from './runtime.js';
import { mountsUnder, overlayMountError } from '../../images/overlay.js';

export interface CrunDriverOptions {
  dataDir: string;
  images: ImageProvider;
  network: NetworkProvider;
  logger?: Logger;
  /** `crun`, `runc` or a path; default: crun, else runc. */
  runtime?: string;
  /** tini binary bind-mounted as the container's PID 1; default /usr/bin/tini-static. */
  tini?: string;
  /** Rotate a log file above this size (default 10 MiB), keeping one old file. */
  logMaxBytes?: number;
  /** cgroup parent of all machines; default `/hangar`. */
  cgroupParent?: string;
  /** How long `start` waits for the container to run (default 10 s). */
  startTimeoutMs?: number;
  /**
   * Machines holding a veth on the host bridge above which stopped (and never started) machines
   * give theirs up, least recently used first, keeping their addresses (default 900; a Linux
   * bridge takes at most 1,023 ports). Their next start rebuilds the netns and veth (~15 ms).
   */
  networkPortBudget?: number;
  /**
   * Run the runtime from a read-only bind mount of its binary (`<dataDir>/runtime-bin/`), which
   * spares crun/runc re-executing a copy of itself at every call (see `OciRuntime.pin`). Default true.
   */
  pinRuntime?: boolean;
  /**
   * Stopped machines that keep a fresh overlay mounted for their next start (the warm set): after
   * a run's overlay is unmounted and wiped, a fresh one is prepared and mounted in the background,
   * so the next start skips preparation and the mount. Least recently stopped beyond this are
   * unmounted. Every host mount slows every container start a little (the mount namespace copy),
   * hence a small bound. Default 32; 0 turns it off.
   */
  warmRootfsLimit?: number;
  /**
   * Start the per-run shims from one long-lived busybox `sh` (see `shim-spawner.ts`) instead of
   * spawning each from the agent (a fork of the whole agent process). Default true; without
   * /bin/busybox the agent spawns them itself.
   */
  shimSpawner?: boolean;
}

/** Removes a previous run's files (existsSync first: a missing file costs no exception). */
function clearRunFiles(files: string[]): void {
  for (const file of files) if (existsSync(file)) unlinkSync(file);
}

/** Attaching waits for stopped machines to give up their veth at this many ports (bridge maximum 1,023). */
const BRIDGE_PORT_HARD_LIMIT = 1000;

type Status = 'created' | 'running' | 'paused' | 'exited';

interface RunState {
  seq: number;
  startedMono: number;
  shimPid: number;
  watcher?: FSWatcher;
  poll?: NodeJS.Timeout;
  /** Resolved with the init pid, or rejected when the container ended before it ran. */
  onStarted?: { resolve: (pid: number) => void; reject: (exit: ExitInfo) => void };
  ended: boolean;
}

interface CrunMachine {
  id: string;
  spec: AgentMachineSpec;
  dir: string;
  image: DriverImage;
  network: DriverNetwork;
  status: Status;
  pid?: number;
  exit?: ExitInfo;
  run?: RunState;
  stopRequested: boolean;
  stopWaiter?: (exit: ExitInfo) => void;
  destroyed: boolean;
  /** Cleanup after the last run (unmount); `start` and `destroy` wait for it. */
  settling: Promise<void>;
  execs: Set<() => void>;
  /** The bundle's config.json as this agent last wrote it (skips rewriting an unchanged one). */
  writtenConfig?: string;
  /** Last create/start/exit (ms): stopped machines give up their veth least recently used first. */
  lastUsed: number;
  /** The netns and veth were given up (or are gone after a reboot); the next start attaches again. */
  parked: boolean;
  /** A `park` in flight; `start` waits for it. */
  parking?: Promise<void>;
  /** Inside `start`: never parked meanwhile. */
  starting: number;
  /** A fresh, never-used overlay is mounted at rootfs/ for the next start (the warm set). */
  warmMounted: boolean;
  /** The image lower dir of that overlay: a new version (update) may bring another image. */
  warmLower?: string;
}

interface SavedMachine {
  spec: AgentMachineSpec;
  image: DriverImage;
  network: DriverNetwork;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class CrunDriver implements Driver {
  readonly name = 'crun';
  readonly capabilities: DriverCapabilities = { suspend: true, exec: true, signal: true, ps: true };
  readonly runtime: OciRuntime;
  private readonly machines = new Map<string, CrunMachine>();
  private readonly machinesDir: string;
  private readonly logger: Logger;
  private readonly tini: string;
  private readonly cgroupParent: string;
  private readonly logMaxBytes: number;
  private readonly startTimeoutMs: number;
  private readonly portBudget: number;
  private readonly warmLimit: number;
  /** Stopped machines with (or getting) a warm overlay, least recently stopped first. */
  private readonly warmSet = new Map<string, CrunMachine>();
  /** User/entrypoint lookups in image rootfs dirs (immutable per digest), remembered. */
  private readonly lookups = new ImageLookups();
  /** Attaches in flight (not yet in `machines` as attached). */
  private attaching = 0;
  private trimming: Promise<void> | undefined;
  private listener: ((id: string, exit: ExitInfo) => void) | undefined;
  private closed = false;
  private runSeq = 0;
  private readonly rotation: NodeJS.Timeout;
  /**
   * The runtime's read-only bind mount, made at the first start (calls before it is ready use the
   * plain binary); a driver that never starts a machine leaves no mount behind.
   */
  private pinning: Promise<unknown> | undefined;

  constructor(private readonly options: CrunDriverOptions) {
    const bin = findRuntime(options.runtime);
    if (!bin) {
      throw new HangarError('failed_precondition', `no OCI runtime found (${options.runtime ?? 'crun or runc'}); run \`hangar host setup\` to install crun, or use --driver fake`);
    }
    this.runtime = new OciRuntime(bin, join(options.dataDir, 'runtime'), { useSpawner: options.shimSpawner !== false });
    this.machinesDir = join(options.dataDir, 'machines');
    this.logger = (options.logger ?? silentLogger).child({ driver: 'crun' });
    this.tini = options.tini ?? '/usr/bin/tini-static';
    this.cgroupParent = options.cgroupParent ?? '/hangar';
    this.logMaxBytes = options.logMaxBytes ?? 10 * 1024 * 1024;
    this.startTimeoutMs = options.startTimeoutMs ?? 10_000;
    this.portBudget = options.networkPortBudget ?? 900;
    this.warmLimit = options.warmRootfsLimit ?? 32;
    this.rotation = setInterval(() => void this.rotateLogs(), 10_000);
    this.rotation.unref();
  }

  /** crun or runc: the binary in use. */
  get runtimeName(): string {
    return this.runtime.name;
  }

  // ---- create ----------------------------------------------------------------------------------

  async create(spec: AgentMachineSpec): Promise<{ privateIp: string; imageDigest: string }> {
    this.assertOpen();
    const existing = this.machines.get(spec.id);
    if (existing && (existing.status === 'running' || existing.status === 'paused')) {
      throw new HangarError('failed_precondition', `machine ${spec.id} is ${existing.status}; stop it before preparing a new version`);
    }
    const image = await this.options.images.resolve(spec.config.image);
    const network = existing?.network ?? await this.attachNetwork(spec);
    const dir = join(this.machinesDir, spec.id);
    await Promise.all(['bundle', 'run', 'logs', 'etc'].map((d) => mkdir(join(dir, d), { recursive: true })));
    await Promise.all([
      writeFile(join(dir, 'etc', 'hosts'), hostsFile(spec, network)),
      writeFile(join(dir, 'etc', 'resolv.conf'), resolvConf(spec, network.dnsServer)),
      writeFile(join(dir, 'etc', 'hostname'), `${spec.id}\n`),
      writeFile(join(dir, 'machine.json'), JSON.stringify({ spec, image, network } satisfies SavedMachine)),
    ]);
    if (existing) {
      // A new version may run another image: its warm overlay (over the old one) is of no use.
      if (this.warmSet.has(spec.id) || existing.warmMounted) void this.evict(existing);
      existing.spec = spec;
      existing.image = image;
    } else {
      this.machines.set(spec.id, this.newMachine({ spec, image, network }, 'created'));
    }
    this.trimNetwork();
    return { privateIp: network.ipv6, imageDigest: image.digest };
  }

  // ---- start -----------------------------------------------------------------------------------

  async start(id: string): Promise<void> {
    const m = this.get(id);
    if (this.options.pinRuntime !== false) this.pinning ??= this.runtime.pin(join(this.options.dataDir, 'runtime-bin'));
    m.starting++;
    try {
      await this.startMachine(m);
    } finally {
      m.starting--;
      m.lastUsed = Date.now();
      this.trimNetwork();
    }
  }

  private async startMachine(m: CrunMachine): Promise<void> {
    const id = m.id;
    if (m.status === 'running') return;
    if (m.status === 'paused') await this.stop(id, { signal: SIGNALS.SIGKILL, timeoutMs: 0 });
    // Includes a warm-up or eviction of the overlay still in flight.
    await settled(m);
    await m.parking;
    // Taken synchronously after the wait: an eviction can no longer pick this machine.
    // Only an overlay of this version's image (the cold path below replaces any other mount).
    const warm = m.warmMounted && m.warmLower === m.image.rootfsDir;
    m.warmMounted = false;
    this.warmSet.delete(id);
    // Parked (the bridge was full), or after a host reboot the namespace and veth are gone (the
    // address allocation is not): rebuild them. Otherwise nothing to do (two existsSync).
    if (m.parked || networkGone(m.network)) {
      m.network = await this.attachNetwork(m.spec);
      m.parked = false;
    }
    const argv = machineArgv(m.spec, m.image.config);
    if (argv.length === 0) {
      throw new HangarError('failed_precondition', `machine ${id}: nothing to run: image ${m.image.name} has no Entrypoint or Cmd and config.init sets none`);
    }
    const paths = this.paths(m);
    const images = this.options.images;
    // The upper dir is fresh at every start, so without config.files the merged rootfs reads like
    // the image's own: look the user and the entrypoint up there, and leave the mount to the shim
    // (right before `crun run`: one process spawn less for the agent). With files, mount here and
    // write them into the merged rootfs first (looking up while the mount runs).
    // A warm rootfs is mounted already, on an upper dir no run has used: nothing to prepare.
    const early = (m.spec.config.files ?? []).length === 0;
    const mounting: Promise<{ rootfs: string; overlay?: ShimOverlay }> = warm
      ? Promise.resolve({ rootfs: join(m.dir, 'rootfs') })
      : early && images.prepareRootfs
      ? images.prepareRootfs(m.dir, m.image.rootfsDir).then((p) => ({ rootfs: p.merged, overlay: { mounter: p.mounter, options: p.options, merged: p.merged } }))
      : images.mountRootfs(m.dir, m.image.rootfsDir).then((rootfs) => ({ rootfs }));
    // Synchronous: the pid file is usually gone already (removed when the last run ended), there
    // is rarely a mount-error, and one unlink is cheaper than three trips through the thread pool
    // (~0.9 ms of the start with rm).
    clearRunFiles([paths.pid, paths.exitCode, paths.mountError]);
    const lookingUp = early ? this.lookups.user(m.image.rootfsDir, m.image.config.User) : undefined;
    let config;
    let overlay: ShimOverlay | undefined;
    try {
      const [mounted, earlyUser] = await Promise.all([mounting, lookingUp]);
      const rootfs = mounted.rootfs;
      overlay = mounted.overlay;
      if (!early) await writeMachineFiles(rootfs, m.spec.config.files);
      const user = earlyUser ?? await resolveUser(rootfs, m.image.config.User);
      config = buildOciSpec({
        spec: m.spec, image: m.image, network: m.network, user, cgroupParent: this.cgroupParent,
        paths: { rootfs, tini: this.tini, resolvConf: join(m.dir, 'etc', 'resolv.conf'), hosts: join(m.dir, 'etc', 'hosts'), hostname: join(m.dir, 'etc', 'hostname') },
      });
      const configJson = JSON.stringify(config);
      const [found] = await Promise.all([
        early ? this.lookups.executable(m.image.rootfsDir, argv[0]!, config.process.env) : findExecutable(rootfs, argv[0]!, config.process.env),
        // Unchanged since the last start of this agent (the usual stop → start): skip the write.
        configJson === m.writtenConfig ? undefined : writeFile(join(paths.bundle, 'config.json'), configJson).then(() => void (m.writtenConfig = configJson)),
      ]);
      if (!found) {
        throw new HangarError('failed_precondition', `machine ${id}: cannot start: ${JSON.stringify(argv[0])} was not found in image ${m.image.name} (PATH ${config.process.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? ''}); fix config.init or the image's entrypoint`);
      }
    } catch (err) {
      await Promise.allSettled([mounting, lookingUp]);
      await this.options.images.unmountRootfs(m.dir).catch(() => {});
      throw err;
    }
    void rotateIfNeeded(paths.stdout, this.logMaxBytes).catch(() => {});
    void rotateIfNeeded(paths.stderr, this.logMaxBytes).catch(() => {});

    const run: RunState = { seq: ++this.runSeq, startedMono: monotonicUsec(), shimPid: 0, ended: false };
    m.run = run;
    m.stopRequested = false;
    delete m.exit;
    const started = new Promise<number>((resolve, reject) => (run.onStarted = { resolve, reject }));
    this.watchRun(m, run);
    // Not awaited: the spawner answers the shim's pid while crun runs (the pid file comes later),
    // so waiting for it would only add its round trip to the start.
    const statusBefore = m.status;
    let launchError: unknown;
    const launching = this.runtime.launchShim({ id, bundle: paths.bundle, runDir: paths.runDir, stdoutFile: paths.stdout, stderrFile: paths.stderr, ...(overlay ? { overlay } : {}) }).then((pid) => {
      run.shimPid = pid;
      void writeFile(join(paths.runDir, 'run.json'), JSON.stringify({ started_mono: run.startedMono, started_at: Date.now(), shim_pid: pid })).catch(() => {});
    }, (err: unknown) => {
      launchError = err;
      run.onStarted?.reject({ exit_code: -2, signal: 0, oom_killed: false, requested_stop: false, exited_at: Date.now() });
    });
    m.status = 'running';
    const timer = setTimeout(() => run.onStarted?.reject({ exit_code: -1, signal: 0, oom_killed: false, requested_stop: false, exited_at: Date.now() }), this.startTimeoutMs);
    try {
      m.pid = await started;
      await launching;
      await this.waitForApp(m.pid, run);
    } catch (exit) {
      if (launchError !== undefined) {
        // No shim ran: nothing to kill, only the watch and the overlay to undo.
        this.endWatch(run);
        m.status = statusBefore;
        await this.options.images.unmountRootfs(m.dir).catch(() => {});
        throw launchError;
      }
      const info = exit as ExitInfo;
      if (info.exit_code === -1) {
        // Timed out: tear the attempt down.
        await this.kill(m);
      }
      await m.settling;
      m.status = 'exited';
      // The shim could not mount the rootfs (exit code 125): the same error as a mount by the agent.
      const mountError = overlay && info.exit_code === 125 ? (await readFile(paths.mountError, 'utf8').catch(() => '')).trim() : '';
      if (mountError) throw overlayMountError(m.dir, mountError);
      const stderr = await tailOf(paths.stderr, 600);
      throw new HangarError('failed_precondition', `machine ${id} failed to start${info.exit_code === -1 ? ` within ${this.startTimeoutMs} ms` : ` (exit code ${info.exit_code})`}${stderr ? `: ${stderr}` : ''}`);
    } finally {
      clearTimeout(timer);
      delete run.onStarted;
    }
  }

  /**
   * The pid file appears when the container is created; the app runs once tini has forked and
   * exec'd it. `start` resolves when the app's first process has run until it first blocks (state
   * S/D: listening, waiting for a child, sleeping), bounded by 200 ms for apps that never block.
   * So a signal sent right after `start` meets an app that had the chance to install its handlers,
   * and a server is usually already listening. Costs a few /proc reads, no process spawns.
   */
  private async waitForApp(pid: number, run: RunState): Promise<void> {
    const deadline = Date.now() + 200;
    const tini = await readlink(`/proc/${pid}/exe`).catch(() => undefined);
    while (Date.now() < deadline && !run.ended) {
      const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => undefined);
      if (children === undefined) return;
      const child = children.trim().split(/\s+/)[0];
      if (child) {
        const stat = await readFile(`/proc/${child}/stat`, 'utf8').catch(() => undefined);
        const exe = await readlink(`/proc/${child}/exe`).catch(() => undefined);
        if (stat === undefined) return;
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        if (exe !== undefined && exe !== tini && state !== 'R') return;
      }
      await sleep(1);
    }
  }

  /** fs.watch on run/ plus a poll: notices the pid file (started) and the exit-code file (ended). */
  private watchRun(m: CrunMachine, run: RunState): void {
    const check = () => void this.checkRun(m, run);
    try {
      run.watcher = watch(join(m.dir, 'run'), check);
      run.watcher.on('error', () => {});
    } catch {
      // poll only
    }
    let polls = 0;
    const tick = () => {
      if (run.ended) return;
      polls++;
      check();
      // Fast polling while starting (fs.watch fallback), then once a second.
      run.poll = setTimeout(tick, run.onStarted && polls < 200 ? 5 : 1000);
      run.poll.unref?.();
    };
    run.poll = setTimeout(tick, 5);
    check();
  }

  private endWatch(run: RunState): void {
    run.ended = true;
    run.watcher?.close();
    if (run.poll) clearTimeout(run.poll);
  }

  private async checkRun(m: CrunMachine, run: RunState): Promise<void> {
    if (run.ended || m.run !== run) return;
    const paths = this.paths(m);
    if (run.onStarted) {
      const pid = Number((await readFile(paths.pid, 'utf8').catch(() => '')).trim());
      if (pid > 0 && run.onStarted) run.onStarted.resolve(pid);
    }
    const text = await readFile(paths.exitCode, 'utf8').catch(() => undefined);
    if (run.ended || m.run !== run) return;
    if (text !== undefined && text.endsWith('\n')) {
      const mtime = await stat(paths.exitCode).then((s) => s.mtimeMs, () => Date.now());
      this.ended(m, run, Number(text.trim()), Math.round(mtime));
      return;
    }
    // The shim died without writing the file (killed, or the host rebooted): the run is over when
    // the container is gone too.
    if (run.shimPid && !processRunning(run.shimPid) && !processAlive(m.pid)) {
      const again = await readFile(paths.exitCode, 'utf8').catch(() => undefined);
      if (run.ended || m.run !== run) return;
      if (again?.endsWith('\n')) this.ended(m, run, Number(again.trim()), Date.now());
      else {
        this.logger.warn('machine shim vanished without an exit status', { machine: m.id });
        await this.runtime.exec(['delete', '--force', m.id]);
        this.ended(m, run, 137, Date.now());
      }
    }
  }

  /** One run ended with `code`: record it, unmount, answer a waiting stop or report to onExit. */
  private ended(m: CrunMachine, run: RunState, code: number, exitedAt: number): void {
    if (run.ended) return;
    this.endWatch(run);
    const signal = code > 128 && code <= 128 + 64 ? code - 128 : 0;
    const oom = signal === SIGNALS.SIGKILL && oomKilledSince(`${this.cgroupParent}/${m.id}`, run.startedMono - 5000);
    const exit: ExitInfo = { exit_code: code, signal, oom_killed: oom, requested_stop: m.stopRequested, exited_at: exitedAt };
    m.status = 'exited';
    m.exit = exit;
    m.lastUsed = Date.now();
    delete m.pid;
    for (const cancel of m.execs) cancel();
    // A run that came up leaves a pid file of no further use; removing it here (the next start
    // waits for `settling`) spares that start an unlink (~0.3 ms here). exit-code stays (recovery
    // reads it), and so does everything of a failed start (its error is read from mount-error).
    const unmounting = Promise.all([
      this.options.images.unmountRootfs(m.dir).catch((err) => this.logger.warn('could not unmount a machine rootfs', { machine: m.id, err: String(err) })),
      run.onStarted ? undefined : rm(this.paths(m).pid, { force: true }).catch(() => {}),
    ]).then(() => undefined);
    m.settling = unmounting;
    // Only after a stop someone asked for (API stop, proxy autostop): that machine is the one
    // expected to start again. Not after a failed start (its mount is not retried behind the
    // caller's back), nor when the app exited by itself (a finished job may never start again; a
    // crash loop restarts at once, racing the warm-up for no gain).
    const cameUp = !run.onStarted && m.stopRequested;
    void unmounting.then(() => {
      this.trimNetwork(); // over the port budget with every machine running until now
      if (cameUp) this.warmUp(m);
    });
    if (run.onStarted) {
      run.onStarted.reject(exit);
      return;
    }
    const waiter = m.stopWaiter;
    delete m.stopWaiter;
    if (waiter) waiter(exit);
    // Reported once the rootfs is unmounted: a machine the API shows as stopped holds no mounts.
    else void m.settling.then(() => {
      if (!m.destroyed && this.machines.get(m.id) === m && m.exit === exit) this.listener?.(m.id, exit);
    });
  }

  // ---- stop / signal / suspend -----------------------------------------------------------------

  async stop(id: string, options: StopOptions): Promise<ExitInfo> {
    const m = this.get(id);
    if (m.status !== 'running' && m.status !== 'paused') {
      await m.settling;
      return m.exit ? { ...m.exit, requested_stop: true } : { exit_code: 0, signal: 0, oom_killed: false, requested_stop: true, exited_at: Date.now() };
    }
    m.stopRequested = true;
    const exited = new Promise<ExitInfo>((resolve) => (m.stopWaiter = resolve));
    if (m.status === 'paused') {
      // A frozen workload cannot handle a signal: stopping a suspended machine discards it.
      await this.kill(m);
    } else {
      this.sendSignal(m, options.signal);
      const timedOut = Symbol('timeout');
      let timer: NodeJS.Timeout | undefined;
      const first = await Promise.race([exited, new Promise<symbol>((r) => (timer = setTimeout(() => r(timedOut), options.timeoutMs)))]);
      clearTimeout(timer);
      if (first === timedOut) await this.kill(m);
    }
    const exit = await Promise.race([exited, sleep(10_000).then(() => undefined)]);
    if (!exit) throw new HangarError('unknown', `machine ${id} did not exit within 10 s of SIGKILL`);
    await m.settling;
    return { ...exit, requested_stop: true };
  }

  /** SIGKILL to the whole container (thawing it if frozen) and wait for the shim to notice. */
  private async kill(m: CrunMachine): Promise<void> {
    if (m.status === 'paused') {
      await this.runtime.exec(['kill', m.id, 'KILL']);
      await this.runtime.exec(['resume', m.id]);
    } else {
      this.sendSignal(m, SIGNALS.SIGKILL);
    }
    const run = m.run;
    for (let i = 0; i < 400 && run && !run.ended; i++) {
      await sleep(5);
      if (i % 20 === 19) void this.checkRun(m, run);
    }
  }

  /** Signals the container's init (tini, which forwards to the app's process group). */
  private sendSignal(m: CrunMachine, signal: number): void {
    if (!m.pid) return;
    try {
      process.kill(m.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  async signal(id: string, signal: number): Promise<void> {
    const m = this.get(id);
    if (m.status !== 'running' && m.status !== 'paused') throw new HangarError('failed_precondition', `machine ${id} is not running`);
    if (m.status === 'paused' && signal === SIGNALS.SIGKILL) {
      await this.runtime.exec(['kill', m.id, 'KILL']);
      await this.runtime.exec(['resume', m.id]);
      return;
    }
    this.sendSignal(m, signal);
  }

  async suspend(id: string): Promise<void> {
    const m = this.get(id);
    if (m.status !== 'running') throw new HangarError('failed_precondition', `machine ${id} is not running`);
    await this.runtime.must(['pause', id], `pause of machine ${id}`);
    m.status = 'paused';
  }

  async resume(id: string): Promise<void> {
    const m = this.get(id);
    if (m.status !== 'paused') throw new HangarError('failed_precondition', `machine ${id} is not suspended`);
    if (!(await this.thaw(id))) await this.runtime.must(['resume', id], `resume of machine ${id}`);
    if (m.status === 'paused') m.status = 'running';
  }

  /**
   * Thaws the container by writing its freezer cgroup file, as `crun resume` does, without
   * spawning crun (about 4 ms less per resume). False when the file is not there (another cgroup
   * layout): the caller falls back to the runtime.
   */
  private async thaw(id: string): Promise<boolean> {
    const path = `${this.cgroupParent}/${id}`;
    for (const [file, value] of [[`/sys/fs/cgroup/freezer${path}/freezer.state`, 'THAWED'], [`/sys/fs/cgroup${path}/cgroup.freeze`, '0']] as const) {
      try {
        await writeFile(file, value);
        return true;
      } catch {
        // not this layout
      }
    }
    return false;
  }

  // ---- exec / ps / logs --------------------------------------------------------------------------

  async exec(id: string, options: ExecOptions): Promise<ExecResponse> {
    const m = this.get(id);
    if (m.status !== 'running') throw new HangarError('failed_precondition', `machine ${id} is not running`);
    const pidFile = join(m.dir, 'run', `exec-${process.pid}-${++this.runSeq}.pid`);
    const child = spawn(this.runtime.command, ['--root', this.runtime.root, 'exec', '--pid-file', pidFile, id, ...options.command], {
      stdio: ['pipe', 'pipe', 'pipe'], ...(this.runtime.env ? { env: this.runtime.env } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {});
    child.stdin.end(options.stdin ?? '');
    let timedOut = false;
    const killInside = async () => {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      void killInside();
    }, options.timeoutMs);
    const cancel = () => void killInside();
    m.execs.add(cancel);
    try {
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (c, s) => resolve([c, s]));
      });
      const stdout = Buffer.concat(out).toString('utf8');
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) throw execTimeoutError(options.command, options.timeoutMs, { stdout, stderr });
      let exitCode = code ?? 128 + (signal ? (SIGNALS as Record<string, number>)[signal] ?? 0 : 0);
      // crun answers 255 when the command cannot be executed; shells answer 127 (not found) / 126.
      if (exitCode === 255 && /executable file .* not found|No such file or directory/.test(stderr)) {
        exitCode = 127;
        stderr = stderr.replace(/^.*?(executable file)/m, '$1');
      } else if (exitCode === 255 && /Permission denied/.test(stderr)) exitCode = 126;
      return { stdout, stderr, exit_code: exitCode, exit_signal: exitCode > 128 && exitCode <= 192 ? exitCode - 128 : 0 };
    } finally {
      clearTimeout(timer);
      m.execs.delete(cancel);
      void rm(pidFile, { force: true });
    }
  }

  async ps(id: string): Promise<ProcessStat[]> {
    const m = this.get(id);
    if (m.status !== 'running' && m.status !== 'paused') throw new HangarError('failed_precondition', `machine ${id} is not running`);
    const pids = (await cgroupPids(`${this.cgroupParent}/${id}`)) ?? (m.pid ? [m.pid] : []);
    return processStats(pids);
  }

  /** Optional capability: the machine's stdout/stderr (see `logs.ts`). */
  readLogs(id: string, options: ReadLogsOptions = {}): AsyncGenerator<LogLine> {
    const m = this.get(id);
    const paths = this.paths(m);
    return readLogFiles({ stdout: paths.stdout, stderr: paths.stderr }, options);
  }

  // ---- images (optional capability; docs/images.md) ---------------------------------------------

  importImage(file: string, name?: string): Promise<{ name: string; digest: string }> {
    this.assertOpen();
    const images = this.options.images;
    if (!images.import) throw new HangarError('failed_precondition', 'this crun driver has no image store to import into');
    return images.import(file, name);
  }

  async listImages(): Promise<StoredImage[]> {
    this.assertOpen();
    return (await this.options.images.list?.()) ?? [];
  }

  /** Every machine the driver holds keeps its image, whatever the agent passes. */
  async gcImages(options: ImageGcOptions): Promise<{ removed: string[] }> {
    this.assertOpen();
    const images = this.options.images;
    if (!images.gc) return { removed: [] };
    return images.gc(this.imagesInUse(), { keepNames: options.keepNames, importGraceMs: options.graceMs });
  }

  imagesInUse(): Set<string> {
    return new Set([...this.machines.values()].map((m) => m.image.digest));
  }

  // ---- inspect / destroy / recover -------------------------------------------------------------

  async inspect(id: string): Promise<DriverStatus> {
    const m = this.machines.get(id);
    if (!m) return { state: 'absent' };
    switch (m.status) {
      case 'created':
        return { state: 'created' };
      case 'running':
        return m.pid ? { state: 'running', pid: m.pid } : { state: 'running' };
      case 'paused':
        return { state: 'paused' };
      case 'exited':
        return { state: 'exited', exit: m.exit! };
    }
  }

  async destroy(id: string): Promise<void> {
    this.assertOpen();
    const m = this.machines.get(id);
    const dir = join(this.machinesDir, id);
    if (m) {
      m.destroyed = true;
      delete m.stopWaiter;
      if (m.status === 'running' || m.status === 'paused') {
        m.stopRequested = true;
        await this.kill(m);
      }
      if (m.run) this.endWatch(m.run);
      this.warmSet.delete(id);
      await settled(m);
      m.warmMounted = false;
    }
    if (!m || m.status === 'running' || m.status === 'paused') await this.runtime.remove(id);
    if (m || existsSync(dir)) {
      await this.options.images.unmountRootfs(dir).catch(() => {});
      for (const mount of await mountsUnder(dir)) await unmount(mount);
    }
    await this.options.network.detach(id);
    await rm(dir, { recursive: true, force: true });
    this.machines.delete(id);
  }

  /** Whether the machine's workload runs now (not stopped, not suspended): who `.internal` names. */
  isServing(id: string): boolean {
    return this.machines.get(id)?.status === 'running';
  }

  onExit(listener: (id: string, exit: ExitInfo) => void): void {
    this.listener = listener;
  }

  async recover(known: AgentMachineSpec[]): Promise<Map<string, DriverStatus>> {
    this.assertOpen();
    const knownIds = new Set(known.map((s) => s.id));
    const containers = new Map((await this.runtime.list()).map((c) => [c.id, c]));
    const dirs = await readdir(this.machinesDir).catch(() => [] as string[]);
    for (const id of new Set([...dirs, ...containers.keys(), ...this.machines.keys()])) {
      if (knownIds.has(id)) continue;
      this.logger.info('removing a machine the agent does not know', { machine: id });
      if (!this.machines.has(id) && containers.has(id)) await this.runtime.remove(id);
      await this.destroy(id);
    }
    await this.options.network.recover(knownIds);
    const result = new Map<string, DriverStatus>();
    for (const spec of known) {
      if (!this.machines.has(spec.id)) await this.reattach(spec, containers.get(spec.id));
      const m = this.machines.get(spec.id);
      if (m) {
        m.spec = spec;
        this.options.network.register?.(networkMachine(spec), m.network);
      }
      result.set(spec.id, await this.inspect(spec.id));
    }
    this.trimNetwork();
    return result;
  }

  /** Rebuilds the in-memory machine of a previous agent from its directory and the runtime's list. */
  private async reattach(spec: AgentMachineSpec, container: { pid: number; status: string } | undefined): Promise<void> {
    const dir = join(this.machinesDir, spec.id);
    const saved = await readFile(join(dir, 'machine.json'), 'utf8').then((t) => JSON.parse(t) as SavedMachine, () => undefined);
    if (!saved) {
      if (container) await this.runtime.remove(spec.id);
      return;
    }
    const m = this.newMachine({ ...saved, spec }, 'created');
    m.parked = networkGone(saved.network);
    this.machines.set(spec.id, m);
    const paths = this.paths(m);
    const runInfo = await readFile(join(paths.runDir, 'run.json'), 'utf8').then((t) => JSON.parse(t) as { started_mono: number; shim_pid: number }, () => undefined);
    if (container && (container.status === 'running' || container.status === 'paused') && runInfo) {
      const run: RunState = { seq: ++this.runSeq, startedMono: runInfo.started_mono, shimPid: runInfo.shim_pid, ended: false };
      m.run = run;
      m.pid = container.pid;
      m.status = container.status === 'paused' ? 'paused' : 'running';
      this.watchRun(m, run);
      return;
    }
    if (container) await this.runtime.remove(spec.id);
    const code = await readFile(paths.exitCode, 'utf8').catch(() => undefined);
    if (code?.endsWith('\n')) {
      const mtime = await stat(paths.exitCode).then((s) => s.mtimeMs, () => Date.now());
      const n = Number(code.trim());
      const signal = n > 128 && n <= 192 ? n - 128 : 0;
      const oom = signal === SIGNALS.SIGKILL && runInfo !== undefined && oomKilledSince(`${this.cgroupParent}/${spec.id}`, runInfo.started_mono - 5000);
      m.status = 'exited';
      m.exit = { exit_code: n, signal, oom_killed: oom, requested_stop: false, exited_at: Math.round(mtime) };
      m.lastUsed = m.exit.exited_at;
    } else if (runInfo) {
      // It ran and left no status: the host rebooted or the shim was killed with it.
      m.status = 'exited';
      m.exit = { exit_code: 137, signal: SIGNALS.SIGKILL, oom_killed: false, requested_stop: false, exited_at: Date.now() };
    }
    m.settling = this.options.images.unmountRootfs(dir).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.rotation);
    await this.pinning;
    await Promise.all([this.runtime.unpin(), this.runtime.closeSpawner()]);
    // Warm overlays are this agent's cache: none outlives it.
    await Promise.all([...this.warmSet.values()].map((m) => this.evict(m)));
    for (const m of this.machines.values()) {
      if (m.run) this.endWatch(m.run);
      for (const cancel of m.execs) cancel();
    }
    this.listener = undefined;
    await this.options.network.close();
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private newMachine(saved: SavedMachine, status: Status): CrunMachine {
    return {
      id: saved.spec.id, spec: saved.spec, image: saved.image, network: saved.network, status,
      dir: join(this.machinesDir, saved.spec.id), stopRequested: false, destroyed: false, settling: Promise.resolve(), execs: new Set(),
      lastUsed: Date.now(), parked: false, starting: 0, warmMounted: false,
    };
  }

  // ---- warm overlays -----------------------------------------------------------------------------

  /**
   * After a run's overlay is unmounted and wiped: mount a fresh one in the background for the next
   * start (the upper dir is wiped again and recreated by the mount, so it is never-used). A start
   * waits for it through `settling`; beyond `warmLimit` the least recently stopped are unmounted.
   */
  private warmUp(m: CrunMachine): void {
    if (this.warmLimit <= 0 || this.closed || m.destroyed || m.status !== 'exited' || this.machines.get(m.id) !== m) return;
    if (m.starting > 0 || this.warmSet.has(m.id)) return;
    this.warmSet.set(m.id, m);
    const previous = m.settling;
    m.settling = previous.then(async () => {
      // A start, destroy or close since then has taken the machine out of the set: leave it.
      if (this.warmSet.get(m.id) !== m || m.status !== 'exited') return;
      try {
        const lower = m.image.rootfsDir;
        await this.options.images.mountRootfs(m.dir, lower);
        m.warmLower = lower;
        m.warmMounted = true;
      } catch (err) {
        this.warmSet.delete(m.id);
        this.logger.warn('could not mount a warm rootfs', { machine: m.id, err: String(err) });
        await this.options.images.unmountRootfs(m.dir).catch(() => {});
      }
    });
    while (this.warmSet.size > this.warmLimit) {
      const oldest = this.warmSet.values().next().value as CrunMachine;
      void this.evict(oldest);
    }
  }

  /** Takes the machine out of the warm set and unmounts its warm overlay (after any warm-up in flight). */
  private evict(m: CrunMachine): Promise<void> {
    this.warmSet.delete(m.id);
    m.settling = m.settling.then(async () => {
      if (!m.warmMounted) return;
      m.warmMounted = false;
      await this.options.images.unmountRootfs(m.dir).catch((err) => this.logger.warn('could not unmount a warm rootfs', { machine: m.id, err: String(err) }));
    });
    return m.settling;
  }

  /** Machines in the warm set (tests, benches). */
  warmMachines(): string[] {
    return [...this.warmSet.keys()];
  }

  // ---- bridge ports ------------------------------------------------------------------------------

  /** Machines whose netns + veth exist (or are being attached): the bridge ports in use. */
  private portsInUse(): number {
    let n = this.attaching;
    for (const m of this.machines.values()) if (!m.parked) n++;
    return n;
  }

  /** Attaches a machine's network; when the bridge is close to full, first waits for stopped machines to give theirs up. */
  private async attachNetwork(spec: AgentMachineSpec): Promise<DriverNetwork> {
    if (this.options.network.park && this.portsInUse() >= Math.max(this.portBudget, BRIDGE_PORT_HARD_LIMIT)) {
      this.trimNetwork();
      await this.trimming;
    }
    this.attaching++;
    try {
      return await this.options.network.attach(networkMachine(spec));
    } finally {
      this.attaching--;
    }
  }

  /**
   * Over the port budget: stopped and never-started machines give up their netns + veth (keeping
   * their addresses), least recently used first, in the background, a few at a time. A host below
   * the budget never parks anything, so its starts keep the attached fast path.
   */
  private trimNetwork(): void {
    const park = this.options.network.park?.bind(this.options.network);
    if (!park || this.trimming || this.closed || this.portsInUse() <= this.portBudget) return;
    this.trimming = (async () => {
      for (;;) {
        const excess = this.portsInUse() - this.portBudget;
        if (excess <= 0 || this.closed) return;
        const idle = [...this.machines.values()]
          .filter((m) => !m.parked && m.starting === 0 && !m.destroyed && (m.status === 'exited' || m.status === 'created'))
          .sort((a, b) => a.lastUsed - b.lastUsed)
          .slice(0, Math.min(excess, 8));
        if (idle.length === 0) return;
        await Promise.all(idle.map((m) => {
          // Parked before the first await: a start from now on waits for `parking`, then attaches.
          m.parked = true;
          m.parking = park(m.id)
            .catch((err: unknown) => this.logger.warn('could not give up a stopped machine\'s network', { machine: m.id, err: String(err) }))
            .finally(() => delete m.parking);
          return m.parking;
        }));
      }
    })().finally(() => (this.trimming = undefined));
  }

  private paths(m: CrunMachine) {
    const runDir = join(m.dir, 'run');
    return {
      bundle: join(m.dir, 'bundle'),
      runDir,
      pid: join(runDir, 'pid'),
      exitCode: join(runDir, 'exit-code'),
      mountError: join(runDir, 'mount-error'),
      stdout: join(m.dir, 'logs', 'stdout.log'),
      stderr: join(m.dir, 'logs', 'stderr.log'),
    };
  }

  private get(id: string): CrunMachine {
    this.assertOpen();
    const m = this.machines.get(id);
    if (!m) throw new HangarError('not_found', `machine ${id} not found on this host`);
    return m;
  }

  private assertOpen(): void {
    if (this.closed) throw new HangarError('unavailable', 'crun driver is closed');
  }

  private async rotateLogs(): Promise<void> {
    for (const m of this.machines.values()) {
      if (m.status !== 'running') continue;
      const p = this.paths(m);
      await rotateIfNeeded(p.stdout, this.logMaxBytes).catch(() => {});
      await rotateIfNeeded(p.stderr, this.logMaxBytes).catch(() => {});
    }
  }
}

function networkMachine(spec: AgentMachineSpec): NetworkMachine {
  const metadata = spec.config.metadata ?? {};
  const group = metadata.fly_process_group ?? metadata.process_group;
  return {
    machineId: spec.id, orgId: spec.org_id, appName: spec.app_name, region: spec.region,
    ...(group ? { processGroup: group } : {}),
    skipDns: (spec.config.dns as { skip_registration?: boolean } | undefined)?.skip_registration === true,
  };
}

/** The namespace or the host side of the veth of a machine's network is missing (reboot, manual cleanup). */
function networkGone(network: DriverNetwork): boolean {
  if (network.netnsPath && !existsSync(network.netnsPath)) return true;
  const veth = (network as { vethName?: string }).vethName;
  return veth !== undefined && !existsSync(`/sys/class/net/${veth}`);
}

/** Waits for the machine's cleanup, including any chained on while waiting (warm-up, eviction). */
async function settled(m: CrunMachine): Promise<void> {
  for (let s = m.settling; ; s = m.settling) {
    await s;
    if (s === m.settling) return;
  }
}

async function unmount(path: string): Promise<void> {
  await new Promise<void>((resolve) => spawn('umount', ['-l', path], { stdio: 'ignore' }).on('close', () => resolve()).on('error', () => resolve()));
}

async function tailOf(file: string, max: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.slice(-max).trim().split('\n').slice(-5).join(' | ');
}
