/**
 * The fake driver's `exec`: a tiny interpreter, just enough to exercise the exec path end to end.
 *
 * - `echo [-n] ARGS` → stdout `ARGS\n`; `true`; `false`; `exit N`; `cat` → echoes stdin;
 *   `sleep SECONDS`; `env`; `hostname`; `pwd`; a path such as `/bin/echo` runs `echo`.
 * - `sh -c "a; b && c || d"` (also `bash`, `/bin/sh`) runs a script of those commands with
 *   `;`, `&&` and `||`, single and double quotes and backslash escapes.
 * - An unknown command answers exit code 127 and stderr `<cmd>: not found`.
 * - Timeout: when the run outlives `timeoutMs` it stops and throws `execTimeoutError` (HTTP 408
 *   `timeout`, as every driver does), quoting the output produced so far.
 * - If the machine stops while a command runs, the command ends with exit 137 / signal 9.
 * @module
 */
import type { ExecResponse } from '../../../api-types/machine.js';
import { execTimeoutError } from '../driver.js';

export interface FakeExecContext {
  stdin: string;
  timeoutMs: number;
  env: Record<string, string>;
  hostname: string;
  /** Aborted when the machine stops or is destroyed. */
  signal: AbortSignal;
}

type Token = { word: string } | { op: ';' | '&&' | '||' };

/** Splits a shell script into words and operators (no expansion, no pipes, no redirection). */
export function tokenize(script: string): Token[] {
  const tokens: Token[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  const flush = () => {
    if (inWord) tokens.push({ word });
    word = '';
    inWord = false;
  };
  for (let i = 0; i < script.length; i++) {
    const ch = script[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < script.length) word += script[++i];
      else word += ch;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < script.length) {
      word += script[++i];
      inWord = true;
    } else if (ch === ' ' || ch === '\t' || ch === '\n') {
      flush();
    } else if (ch === ';') {
      flush();
      tokens.push({ op: ';' });
    } else if ((ch === '&' || ch === '|') && script[i + 1] === ch) {
      flush();
      tokens.push({ op: ch === '&' ? '&&' : '||' });
      i++;
    } else {
      word += ch;
      inWord = true;
    }
  }
  flush();
  return tokens;
}

interface Output {
  stdout: string;
  stderr: string;
}

class ExitScript {
  constructor(readonly code: number) {}
}
class Interrupted {
  constructor(readonly result: ExecResponse) {}
}
class TimedOut {}

export async function runFakeExec(command: string[], ctx: FakeExecContext): Promise<ExecResponse> {
  const out: Output = { stdout: '', stderr: '' };
  const deadline = Date.now() + ctx.timeoutMs;
  try {
    const code = await runCommand(command, ctx, out, deadline, true);
    return { ...out, exit_code: code, exit_signal: 0 };
  } catch (err) {
    if (err instanceof ExitScript) return { ...out, exit_code: err.code, exit_signal: 0 };
    if (err instanceof Interrupted) return { stdout: out.stdout, stderr: out.stderr + err.result.stderr, exit_code: err.result.exit_code, exit_signal: err.result.exit_signal };
    if (err instanceof TimedOut) throw execTimeoutError(command, ctx.timeoutMs, out);
    throw err;
  }
}

async function runScript(script: string, ctx: FakeExecContext, out: Output, deadline: number): Promise<number> {
  let status = 0;
  let pending: string[] = [];
  let skip = false;
  const runPending = async () => {
    if (pending.length > 0 && !skip) status = await runCommand(pending, ctx, out, deadline, false);
    pending = [];
  };
  for (const token of tokenize(script)) {
    if ('word' in token) {
      pending.push(token.word);
      continue;
    }
    await runPending();
    // `a && b` runs b only when a succeeded; `a || b` only when it failed; `;` always.
    skip = token.op === '&&' ? status !== 0 : token.op === '||' ? status === 0 : false;
  }
  await runPending();
  return status;
}

async function runCommand(argv: string[], ctx: FakeExecContext, out: Output, deadline: number, topLevel: boolean): Promise<number> {
  const [path, ...args] = argv;
  if (path === undefined) return 0;
  const name = path.slice(path.lastIndexOf('/') + 1);
  switch (name) {
    case 'sh':
    case 'bash':
    case 'ash':
      if (args[0] === '-c' && args[1] !== undefined) return runScript(args[1], ctx, out, deadline);
      out.stderr += `${name}: only "${name} -c SCRIPT" is supported by the fake driver\n`;
      return 2;
    case 'echo': {
      const noNewline = args[0] === '-n';
      out.stdout += (noNewline ? args.slice(1) : args).join(' ') + (noNewline ? '' : '\n');
      return 0;
    }
    case 'true':
      return 0;
    case 'false':
      return 1;
    case 'exit': {
      const code = args[0] === undefined ? 0 : Number(args[0]);
      const value = Number.isInteger(code) ? code & 0xff : 2;
      if (topLevel) return value;
      throw new ExitScript(value);
    }
    case 'cat':
      if (args.length > 0) {
        for (const file of args) out.stderr += `cat: ${file}: No such file or directory\n`;
        return 1;
      }
      out.stdout += ctx.stdin;
      return 0;
    case 'sleep': {
      const seconds = Number(args[0]);
      if (args[0] === undefined || !Number.isFinite(seconds) || seconds < 0) {
        out.stderr += `sleep: invalid time interval '${args[0] ?? ''}'\n`;
        return 1;
      }
      const wanted = Date.now() + seconds * 1000;
      await sleepUntil(Math.min(wanted, deadline), ctx);
      if (wanted > deadline) {
        throw new TimedOut();
      }
      return 0;
    }
    case 'env':
      out.stdout += Object.entries(ctx.env).map(([k, v]) => `${k}=${v}\n`).join('');
      return 0;
    case 'hostname':
      out.stdout += `${ctx.hostname}\n`;
      return 0;
    case 'pwd':
      out.stdout += '/\n';
      return 0;
    default:
      out.stderr += `${path}: not found\n`;
      return 127;
  }
}

/** Waits until `until`, or throws `Interrupted` (exit 137, SIGKILL) when the machine goes away. */
function sleepUntil(until: number, ctx: FakeExecContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const killed = () => {
      clearTimeout(timer);
      reject(new Interrupted({ stdout: '', stderr: '', exit_code: 137, exit_signal: 9 }));
    };
    if (ctx.signal.aborted) return killed();
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener('abort', killed);
      resolve();
    }, Math.max(0, until - Date.now()));
    ctx.signal.addEventListener('abort', killed, { once: true });
  });
}
