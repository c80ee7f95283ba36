/**
 * The OCI runtime binary (crun, or runc when crun is missing: same commands, same code path) with
 * our own state root, so `list` only ever shows Hangar's containers of this agent. Also the
 * per-machine shim: a tiny `sh` script, started in its own session with stdio on the machine's log
 * files, that runs `RUNTIME run` in the foreground and writes the exit status to `run/exit-code`
 * when the container ends. The agent is never the container's parent, so it can restart (or crash)
 * while machines keep running, and it learns about exits from the file.
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, openSync, closeSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { HangarError } from '../../../core/errors.js';

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

export class OciRuntime {
  constructor(readonly bin: string, readonly root: string) {}

  get name(): string {
    return this.bin.split('/').pop() ?? this.bin;
  }

  /** Runs `RUNTIME --root R ...args`; stdio piped (never use for `run -d`). */
  exec(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(this.bin, ['--root', this.root, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
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
   * runtime) and `exit-code` (written by the shim). Answers the shim's pid. One process spawn.
   */
  launchShim(options: { id: string; bundle: string; runDir: string; stdoutFile: string; stderrFile: string }): number {
    const out = openSync(options.stdoutFile, 'a', 0o640);
    const err = openSync(options.stderrFile, 'a', 0o640);
    try {
      const child = spawn('/bin/sh', ['-c', SHIM_SCRIPT, `hangar-shim:${options.id}`, options.runDir,
        this.bin, '--root', this.root, 'run', '--bundle', options.bundle, '--pid-file', join(options.runDir, 'pid'), options.id], {
        detached: true, stdio: ['ignore', out, err], cwd: '/',
      });
      child.unref();
      if (child.pid === undefined) throw new HangarError('unknown', `could not start the shim for machine ${options.id}`);
      return child.pid;
    } finally {
      closeSync(out);
      closeSync(err);
    }
  }
}

/**
 * $1 = run dir, the rest = the runtime's `run` command. The exit code of `crun run` is the
 * container's (tini: the app's code, or 128+N when a signal N killed it). The file ends with a
 * newline, so a reader that sees a partial write can tell.
 */
export const SHIM_SCRIPT = `d=$1; shift
"$@" </dev/null
c=$?
echo "$c" > "$d/exit-code"
`;
