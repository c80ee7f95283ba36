/**
 * Flags shared by the server roles (`up`, `api`): parsing with clear errors, and the defaults.
 * @module
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const DEFAULT_API_LISTEN = '127.0.0.1:4280';
export const DEFAULT_AGENT_LISTEN = '127.0.0.1:4281';
/** "lcl" (local): a three-letter code like Fly's, for a host that names no region. */
export const DEFAULT_REGION = 'lcl';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HANGAR_DATA_DIR) return env.HANGAR_DATA_DIR;
  return process.getuid?.() === 0 ? '/var/lib/hangar' : join(homedir(), '.local', 'share', 'hangar');
}

export class UsageError extends Error {}

export function parseRoleArgs<T extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const known = Object.keys(options).map((o) => `--${o}`).join(', ');
    throw new UsageError(`hangar ${command}: ${(err as Error).message.split('\n')[0]}; known flags: ${known}`);
  }
}

/** `127.0.0.1:4280`, `:4280`, `[::1]:4280` → host and port, or a message naming the flag. */
export function parseListen(flag: string, value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new UsageError(`--${flag}: expected HOST:PORT such as 127.0.0.1:4280, got ${JSON.stringify(value)}`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export function parseRegion(value: string): string {
  if (!/^[a-z]{3}$/.test(value)) throw new UsageError(`--region: expected a three-letter lowercase region code such as "ams", got ${JSON.stringify(value)}`);
  return value;
}
