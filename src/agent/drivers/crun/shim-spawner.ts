/**
 * A small long-lived process that starts the per-run shims, so the agent does not fork itself at
 * every start. `child_process.spawn` forks the whole agent (~100-150 MB mapped) with the event loop
 * blocked for ~1.2-2 ms; writing one line to this process blocks it ~0.2 ms, and the shim's first
 * action comes sooner, since a fork of a ~1 MB static busybox `sh` is cheaper than one of Node.
 *
 * Protocol: one line per shim on the spawner's stdin, every field single-quoted (so the spawner's
 * `eval "set -- LINE"` only ever yields the fields back): stdout file, stderr file, one optional
 * `NAME=value` to export, then the shim's own arguments. The spawner runs the shim script inline in
 * a background subshell (one fork, no exec of another shell) with stdin /dev/null and stdout/stderr
 * appended to the two files, and answers the subshell's pid on its own line. An empty line only
 * reaps ended shims; the agent sends one every second while the spawner runs (see `spawnerScript`). The spawner has its own session and ends when its stdin closes (driver
 * close, or the agent's death); the shims it started keep running either way, as machines must
 * across agent restarts.
 * @module
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** A line longer than this might not reach the spawner in one piece (PIPE_BUF is 4096). */
const MAX_LINE = 4000;

/** Quotes one argument for a POSIX shell: `'...'`, each `'` as `'\''`. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** One request line, or undefined when the fields cannot travel as one line (newline or NUL in one, or too long). */
export function requestLine(fields: readonly string[]): string | undefined {
  if (fields.some((f) => f.includes('\n') || f.includes('\0'))) return undefined;
  const line = `${fields.map(shellQuote).join(' ')}\n`;
  return Buffer.byteLength(line) <= MAX_LINE ? line : undefined;
}

/**
 * The spawner: `$1 $2` log files, `$3` an optional `NAME=value` to export, the rest the shim's
 * arguments for `shim` (the shim script as a function body). `IFS= read -r` keeps the line as
 * written; a failed eval (cannot happen with our quoting) answers 0, so the caller never waits.
 * The subshell redirects with `exec` (a redirection on the subshell itself would keep a saved
 * copy of the spawner's stdin/stdout pipes open in every shim for its whole life).
 * Ended shims are reaped by `jobs` after every line: a launch, or the empty line the agent sends
 * once a second (`REAP_INTERVAL_MS`). Not by `read -t` (busybox's read answers 1 both on a timeout
 * and at EOF, so the spawner could not tell an idle second from the agent's death) and not by a
 * CHLD trap (a signal interrupts `read` and loses the part of a line it had read). Until reaped an
 * ended shim is a zombie, which the driver does not count as alive (`processRunning`). EOF ends
 * the loop.
 */
function spawnerScript(shimScript: string): string {
  return `shim() {
${shimScript}}
while IFS= read -r hangar_line; do
if [ -z "$hangar_line" ]; then
:
elif eval "set -- $hangar_line" && [ $# -ge 3 ]; then
hangar_out=$1 hangar_err=$2 hangar_env=$3; shift 3
( exec </dev/null >>"$hangar_out" 2>>"$hangar_err"; if [ -n "$hangar_env" ]; then export "$hangar_env"; fi; shim "$@" ) &
echo "$!"
else
echo 0
fi
jobs >/dev/null
done
`;
}

/** How often the agent asks the spawner to reap ended shims (an empty line; no answer). */
const REAP_INTERVAL_MS = 1000;

/** The spawner could not take the request: nothing was started, the caller may spawn the shim itself. */
export class SpawnerUnavailable extends Error {}

interface Pending {
  resolve: (pid: number) => void;
  reject: (err: Error) => void;
}

export class ShimSpawner {
  private child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  private pending: Pending[] = [];
  private buffered = '';
  private closed = false;
  private reapTimer: NodeJS.Timeout | undefined;

  constructor(private readonly shell: string, private readonly shimScript: string) {}

  /** The spawner's pid while it runs (tests kill it to check the fallback). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts one shim and answers its pid. Rejects with `SpawnerUnavailable` when the line never
   * reached a live spawner (it is gone, or the write failed): then nothing ran and the caller can
   * start the shim another way; the next launch starts a new spawner. A spawner that dies after it
   * took the line rejects with a plain error: the shim may have started, so it must not be started
   * twice.
   */
  launch(stdoutFile: string, stderrFile: string, exportEnv: string | undefined, args: readonly string[]): Promise<number> {
    if (this.closed) return Promise.reject(new SpawnerUnavailable('the shim spawner is closed'));
    const line = requestLine([stdoutFile, stderrFile, exportEnv ?? '', ...args]);
    if (line === undefined) return Promise.reject(new SpawnerUnavailable('an argument holds a newline, or the line is too long'));
    const child = this.child ?? this.begin();
    if (!child || child.stdin.destroyed || !child.stdin.writable) {
      this.drop(child);
      return Promise.reject(new SpawnerUnavailable('the shim spawner is not running'));
    }
    return new Promise<number>((resolve, reject) => {
      const entry: Pending = { resolve, reject };
      this.pending.push(entry);
      // Kept alive while an answer is due; idle, the spawner never holds the agent's event loop open.
      (child.stdout as unknown as { ref?: () => void }).ref?.();
      child.stdin.write(line, (err) => {
        if (!err) return;
        // Not written: the spawner never saw it.
        const at = this.pending.indexOf(entry);
        if (at >= 0) this.pending.splice(at, 1);
        this.drop(child);
        reject(new SpawnerUnavailable(`could not write to the shim spawner: ${err.message}`));
      });
    });
  }

  /** Ends the spawner (EOF on its stdin; SIGKILL if it has not exited within `graceMs`). Shims keep running. */
  async close(graceMs = 1000): Promise<void> {
    this.closed = true;
    clearInterval(this.reapTimer);
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.drop(child);
  }

  private begin(): ChildProcessByStdio<Writable, Readable, null> | undefined {
    let child: ChildProcessByStdio<Writable, Readable, null>;
    try {
      // Own session: a signal to the agent's process group never reaches it or its shims.
      child = spawn(this.shell, ['sh', '-c', spawnerScript(this.shimScript), 'hangar-shim-spawner'], { stdio: ['pipe', 'pipe', 'ignore'], detached: true, cwd: '/' });
    } catch {
      return undefined;
    }
    // A shell that cannot be spawned reports it as an 'error' event, after pid came back undefined.
    child.on('error', () => this.drop(child));
    if (child.pid === undefined) return undefined;
    this.child = child;
    // Neither the spawner nor its pipes keep the agent's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    child.stdin.on('error', () => this.drop(child));
    this.reapTimer = setInterval(() => {
      // Skipped while a write is still queued: the spawner is busy and reaps after each launch anyway.
      if (child.stdin.writable && child.stdin.writableLength === 0) child.stdin.write('\n');
    }, REAP_INTERVAL_MS);
    this.reapTimer.unref();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.answer(chunk));
    // 'close' comes after the last answer was read ('exit' may come before it).
    child.stdout.on('close', () => this.drop(child));
    return child;
  }

  private answer(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const text = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const waiter = this.pending.shift();
      if (this.pending.length === 0) (this.child?.stdout as unknown as { unref?: () => void } | undefined)?.unref?.();
      const pid = Number(text.trim());
      if (!waiter) continue;
      if (Number.isInteger(pid) && pid > 0) waiter.resolve(pid);
      else waiter.reject(new Error(`the shim spawner answered ${JSON.stringify(text)} instead of a pid`));
    }
  }

  /** Forgets a spawner that died or failed; requests it had taken fail, the next launch starts a new one. */
  private drop(child: ChildProcessByStdio<Writable, Readable, null> | undefined): void {
    if (!child || this.child !== child) return;
    this.child = undefined;
    clearInterval(this.reapTimer);
    this.reapTimer = undefined;
    this.buffered = '';
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const waiting = this.pending;
    this.pending = [];
    for (const w of waiting) w.reject(new Error('the shim spawner ended before it answered; the shim may have started'));
  }
}
