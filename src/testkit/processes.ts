/**
 * Child processes in tests and benches: run a command to its end, wait for `hangar up` to say it is
 * up, and find a process's children and command line in /proc.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command args` to its end (killed after `timeoutMs`), collecting its output. */
export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * Resolves once a spawned `hangar up` (stdio piped) prints `hangar: up.`; rejects, with everything it
 * printed, when it exits first or takes longer than `timeoutMs`. `onOutput` receives every chunk of
 * stdout and stderr, so the caller keeps the log for later failures.
 */
export function waitForUp(up: ChildProcess, onOutput: (chunk: string) => void, timeoutMs = 60_000): Promise<void> {
  let output = '';
  const collect = (d: Buffer | string) => {
    output += d;
    onOutput(String(d));
  };
  up.stderr!.on('data', collect);
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hangar up did not come up in ${timeoutMs / 1000} s:\n${output}`)), timeoutMs);
    up.stdout!.on('data', (d) => {
      collect(d);
      if (output.includes('hangar: up.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    up.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hangar up exited early (${code}):\n${output}`));
    });
  });
}

/** The pids of `pid`'s children (its main thread's: Node spawns from there); none when it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process's command line, arguments joined by spaces; empty when it is gone. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}
