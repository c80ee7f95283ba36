/**
 * Runs a host tool (umoci, skopeo, tar, mount) and captures its output.
 * @module
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export function run(cmd: string, args: string[], options: { signal?: AbortSignal; maxStdout?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    const out: Buffer[] = [];
    let outSize = 0;
    const max = options.maxStdout ?? 64 * 1024 * 1024;
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      outSize += b.length;
      if (outSize <= max) out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 16_384) err += b.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr: err.trim() }));
  });
}
