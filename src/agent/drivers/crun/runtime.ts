/**
 * The OCI runtime binary (crun, or runc when crun is missing: same commands, same code path) with
 * our own state root, so `list` only ever shows Hangar's containers of this agent, run from a
 * read-only bind mount of itself (`pin`). Also the per-machine shim: a tiny `sh` script, started by
 * the shim spawner (`shim-spawner.ts`; in its own session, by the agent itself as a fallback) with
 * stdio on the machine's log files, that mounts the machine's rootfs when
 * asked, runs `RUNTIME run` in the foreground and writes the exit status to `run/exit-code` when
 * the container ends. The agent is never the container's parent, so it can restart (or crash)
 * while machines keep running, and it learns about exits from the file.
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, openSync, closeSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { HangarError } from '../../../core/errors.js';
import { run } from '../../images/exec.js';
import { BUSYBOX, hasBusybox, mountOptionsOf, mountsUnder } from '../../images/overlay.js';
import { processAlive } from './procfs.js';
import { ShimSpawner, SpawnerUnavailable } from './shim-spawner.js';

export interface RuntimeContainer {
  id: string;
  pid: number;
  status: string;
}

/** Finds crun, else runc, on PATH (plus /usr/sbin and /sbin, where runc lives on Debian). */
export function findRuntime(preferred?: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (preferred?.includes('/')) return isExecutable(preferred) ? preferred : undefined;
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin', '/usr/local/sbin', '/usr/sbin', '/sbin', '/bin'].filter(Boolean);
  for (const name of preferred ? [preferred] : ['crun', 'runc']) {
    for (const dir of dirs) if (isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** crun and runc skip re-executing a copy of themselves when this is set and their binary is read-only. */
const CLONED_BINARY_ENV = '_LIBCONTAINER_CLONED_BINARY';

let pinCount = 0;

/** Unmounts (lazily) and removes one `<pid>-<n>` dir of `pin`. */
async function dropPin(own: string): Promise<void> {
  for (const mount of await mountsUnder(own)) await run('umount', ['-l', mount]);
  await rm(own, { recursive: true, force: true });
}

/** Removes the pins of agents that ended without closing their driver (crash, SIGKILL). */
async function sweepPins(dir: string): Promise<void> {
  for (const entry of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(entry.split('-')[0]);
    if (pid > 0 && pid !== process.pid && !processAlive(pid)) await dropPin(join(dir, entry));
  }
}

export class OciRuntime {
  /** The path to execute: `bin`, or its read-only bind mount once `pin` made one. */
  command: string;
  /** The environment of every runtime process (undefined: the agent's own). */
  env: NodeJS.ProcessEnv | undefined;
  private pinnedAt: string | undefined;
  /** Starts the shims without forking the agent; undefined without busybox (or `useSpawner: false`). */
  private spawner: ShimSpawner | undefined;

  constructor(readonly bin: string, readonly root: string, options: { useSpawner?: boolean } = {}) {
    this.command = bin;
    // busybox's `sh`: a small static process to fork the shims from.
    if (options.useSpawner !== false && hasBusybox()) this.spawner = new ShimSpawner(BUSYBOX, SHIM_BODY);
  }

  /** The spawner's pid while it runs (tests). */
  get spawnerPid(): number | undefined {
    return this.spawner?.pid;
  }

  get name(): string {
    return this.bin.split('/').pop() ?? this.bin;
  }

  /**
   * crun and runc guard against a container overwriting the runtime binary through /proc/PID/exe
   * (CVE-2019-5736) by re-executing themselves from a read-only copy (a private read-only bind
   * mount) at every invocation: a second exec and dynamic link per call, ~2.5 ms of every start
   * here. They skip that when the binary they run from is on a read-only mount and
   * `_LIBCONTAINER_CLONED_BINARY` is set. So the agent makes that read-only bind mount once, under
   * `dir/<pid>-<n>/`, and runs the runtime from there: the same protection (a write through
   * /proc/PID/exe fails with EROFS), one host mount per driver instead of one per call. One per
   * instance, so a driver that closes never pulls the binary from under another one; mounts of
   * processes that died without closing are removed here. Answers false (and keeps the plain
   * binary) when the mount cannot be made or is not read-only.
   */
  async pin(dir: string): Promise<boolean> {
    const own = join(dir, `${process.pid}-${++pinCount}`);
    const target = join(own, this.name);
    try {
      await sweepPins(dir);
      await mkdir(own, { recursive: true });
      await writeFile(target, '', { flag: 'a' });
      const bind = await run('mount', ['--bind', this.bin, target]);
      if (bind.code !== 0) {
        await rm(own, { recursive: true, force: true });
        return false;
      }
      await run('mount', ['-o', 'remount,bind,ro', target]);
      // Only a read-only mount keeps the protection; anything else runs the plain binary.
      if (!(await mountOptionsOf(target))?.split(',').includes('ro')) {
        await dropPin(own);
        return false;
      }
    } catch {
      return false;
    }
    this.pinnedAt = own;
    this.command = target;
    this.env = { ...process.env, [CLONED_BINARY_ENV]: '1' };
    return true;
  }

  /** Drops the read-only mount `pin` made (lazily: running containers keep their binary). */
  async unpin(): Promise<void> {
    const own = this.pinnedAt;
    if (!own) return;
    this.pinnedAt = undefined;
    this.command = this.bin;
    this.env = undefined;
    await dropPin(own).catch(() => undefined);
  }

  /** Runs `RUNTIME --root R ...args`; stdio piped (never use for `run -d`). */
  exec(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(this.command, ['--root', this.root, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, ...(this.env ? { env: this.env } : {}) }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  async must(args: string[], what: string): Promise<string> {
    const result = await this.exec(args);
    if (result.code !== 0) throw new HangarError('unknown', `${this.name} ${what} failed: ${result.stderr.trim() || `exit ${result.code}`}`);
    return result.stdout;
  }

  async list(): Promise<RuntimeContainer[]> {
    const result = await this.exec(['list', '--format', 'json']);
    if (result.code !== 0) return [];
    const parsed = JSON.parse(result.stdout.trim() || '[]') as { id: string; pid: number; status: string }[] | null;
    return (parsed ?? []).map((c) => ({ id: c.id, pid: c.pid, status: c.status }));
  }

  async state(id: string): Promise<RuntimeContainer | undefined> {
    const result = await this.exec(['state', id]);
    if (result.code !== 0) return undefined;
    const s = JSON.parse(result.stdout) as { id: string; pid: number; status: string };
    return { id: s.id, pid: s.pid, status: s.status };
  }

  /** kill + delete --force; never throws. */
  async remove(id: string): Promise<void> {
    await this.exec(['kill', id, 'KILL']);
    await this.exec(['delete', '--force', id]);
  }

  /**
   * Starts the shim for one run. `runDir` receives `pid` (the container's init, written by the
   * runtime) and `exit-code` (written by the shim). With `overlay`, the shim first mounts the
   * machine's rootfs (`busybox mount -t overlay`, a static binary: no libmount to load) and only
   * then runs the runtime, so the agent spends one process spawn per start instead of two; a
   * failed mount leaves its message in `run/mount-error` and exit code 125, and the runtime never
   * runs. The shim comes from the long-lived spawner (`shim-spawner.ts`: no fork of the agent);
   * when that is not available (no busybox, spawner gone before it took the request) the agent
   * spawns `/bin/sh` itself, as before. Answers the shim's pid (0 in the one case it is unknown, below).
   */
  async launchShim(options: LaunchOptions): Promise<number> {
    const args = this.shimArgs(options);
    if (this.spawner) {
      try {
        return await this.spawner.launch(options.stdoutFile, options.stderrFile, this.env ? `${CLONED_BINARY_ENV}=1` : undefined, args);
      } catch (err) {
        // The spawner died after it took the request: the shim may be running, and a second one
        // would run the same container twice. Answer 0 (pid unknown): the run is then followed by
        // its pid and exit-code files alone, and a shim that never started ends the start by its
        // timeout.
        if (!(err instanceof SpawnerUnavailable)) return 0;
        // Nothing was started: fall back to a spawn of our own below.
      }
    }
    return this.spawnShim(options, args);
  }

  /** The shim started by the agent itself: a fork of the agent, `/bin/sh -c SHIM` in its own session. */
  private spawnShim(options: LaunchOptions, args = this.shimArgs(options)): number {
    const out = openSync(options.stdoutFile, 'a', 0o640);
    const err = openSync(options.stderrFile, 'a', 0o640);
    try {
      const child = spawn('/bin/sh', ['-c', SHIM_SCRIPT, ...args], {
        detached: true, stdio: ['ignore', out, err], cwd: '/', ...(this.env ? { env: this.env } : {}),
      });
      child.unref();
      if (child.pid === undefined) throw new HangarError('unknown', `could not start the shim for machine ${options.id}`);
      return child.pid;
    } finally {
      closeSync(out);
      closeSync(err);
    }
  }

  /** Ends the shim spawner (running shims and their containers are not touched). */
  async closeSpawner(): Promise<void> {
    const spawner = this.spawner;
    this.spawner = undefined;
    await spawner?.close();
  }

  /** $0 (a name for ps) and the shim script's arguments. */
  private shimArgs(options: LaunchOptions): string[] {
    const overlay = options.overlay;
    return [`hangar-shim:${options.id}`, options.runDir,
      overlay?.mounter ?? '', overlay?.options ?? '', overlay?.merged ?? '',
      this.command, '--root', this.root, 'run', '--bundle', options.bundle, '--pid-file', join(options.runDir, 'pid'), options.id];
  }
}

export interface LaunchOptions {
  id: string;
  bundle: string;
  runDir: string;
  stdoutFile: string;
  stderrFile: string;
  overlay?: ShimOverlay;
}

/** An overlay the shim mounts before it runs the container. */
export interface ShimOverlay {
  /** A `mount` that takes `-t overlay overlay -o OPTIONS TARGET` (busybox's applet, or util-linux). */
  mounter: string;
  /** `lowerdir=...,upperdir=...,workdir=...` */
  options: string;
  /** The mount point (the bundle's rootfs). */
  merged: string;
}

/**
 * $1 = run dir; $2 $3 $4 = mounter, overlay options, mount point (all empty: the rootfs is already
 * mounted); the rest = the runtime's `run` command. The exit code of `crun run` is the
 * container's (tini: the app's code, or 128+N when a signal N killed it). The file ends with a
 * newline, so a reader that sees a partial write can tell. `$2` is split into words on purpose:
 * `/bin/busybox mount`.
 */
export const SHIM_SCRIPT = `d=$1 m=$2 o=$3 t=$4; shift 4
if [ -n "$m" ] && ! $m -t overlay overlay -o "$o" "$t" 2>"$d/mount-error"; then
echo 125 > "$d/exit-code"; exit 125
fi
"$@" </dev/null
c=$?
echo "$c" > "$d/exit-code"
`;

/** The same script as the spawner's shell function: its first argument is the name `$0` had. */
const SHIM_BODY = `shift
${SHIM_SCRIPT}`;
