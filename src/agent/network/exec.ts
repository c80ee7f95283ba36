/**
 * Runs `ip`/`nft`/`sysctl`-like host commands with a script on stdin and a hard timeout. A failure
 * becomes a `HangarError` that names the command, the part of the script that failed, the stderr
 * and a fix.
 * @module
 */
import { spawn } from 'node:child_process';
import { HangarError } from '../../core/errors.js';

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** What to tell the operator when the command fails (appended to the message). */
  fix?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const DEFAULT_FIX = 'run `hangar host setup` (installs iproute2 and nftables) and make sure the agent runs as root';

export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const shown = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      reject(new HangarError('unknown', `network: could not start \`${shown}\`: ${(err as Error).message}; ${options.fix ?? DEFAULT_FIX}`, { cause: err }));
      return;
    }
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new HangarError('timeout', `network: \`${shown}\` did not finish within ${timeoutMs} ms; check that the host is not overloaded and that no other process holds the netlink/nftables lock`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => errOut.push(chunk));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const missing = err.code === 'ENOENT' ? ` (\`${command}\` is not installed)` : '';
      reject(new HangarError('unknown', `network: could not run \`${shown}\`${missing}: ${err.message}; ${options.fix ?? DEFAULT_FIX}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(errOut).toString('utf8').trim();
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      const script = options.input ? `; script:\n${options.input.trimEnd()}` : '';
      reject(new HangarError('unknown', `network: \`${shown}\` ${how}: ${stderr || '(no stderr)'}; ${options.fix ?? DEFAULT_FIX}${script}`));
    });
    child.stdin.on('error', () => undefined); // a command that exits early closes stdin; 'close' reports it
    child.stdin.end(options.input ?? '');
  });
}
