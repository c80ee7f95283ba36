/**
 * Where the CLI finds the API and its token. `HANGAR_API_URL` and `HANGAR_API_TOKEN` win; else
 * `${HANGAR_CONFIG_DIR:-~/.hangar}/config.json` (`{"api_url": "...", "token": "..."}`, written by
 * `hangar up` through `writeCliConfig`); else the API is `http://127.0.0.1:4280` and a token is
 * required before any API call.
 * @module
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:4280';
export const CONFIG_FILE = 'config.json';

export interface CliConfigFile {
  api_url?: string;
  token?: string;
}

export interface ResolvedCliConfig {
  apiUrl: string;
  token: string | undefined;
  /** The directory the config file is (or would be) in. */
  configDir: string;
  /** Where each value came from, for `--debug` and `auth token`. */
  sources: { apiUrl: 'env' | 'file' | 'default'; token: 'env' | 'file' | 'none' };
}

type Env = Record<string, string | undefined>;

export function cliConfigDir(env: Env = process.env): string {
  return env.HANGAR_CONFIG_DIR || join(env.HOME || homedir(), '.hangar');
}

/** Reads `<dir>/config.json`; undefined when the file does not exist. Throws a CliError when it is unreadable. */
export function readCliConfig(dir: string): CliConfigFile | undefined {
  const file = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError('invalid_argument', `cannot read ${file}: ${(err as Error).message}`, 'Fix its permissions, or re-run `hangar up`');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError('invalid_argument', `${file} is not valid JSON: ${(err as Error).message}`, 'Fix or delete it, or re-run `hangar up`');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CliError('invalid_argument', `${file} must hold a JSON object like {"api_url": "...", "token": "..."}`, 'Fix or delete it, or re-run `hangar up`');
  }
  const record = parsed as Record<string, unknown>;
  const config: CliConfigFile = {};
  for (const key of ['api_url', 'token'] as const) {
    const value = record[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new CliError('invalid_argument', `${file}: ${key} must be a string`, 'Fix or delete it, or re-run `hangar up`');
    config[key] = value;
  }
  return config;
}

/**
 * Writes `<dir>/config.json` (directory 0700, file 0600, atomically via a temporary file) and
 * returns the file's path. Synchronous, so it is safe to call right before a process exits.
 */
export function writeCliConfig(dir: string, config: { api_url: string; token: string }): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, CONFIG_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify({ api_url: config.api_url, token: config.token }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
  return file;
}

/** Resolves the API URL and token from the environment and the config file. */
export function resolveCliConfig(env: Env = process.env): ResolvedCliConfig {
  const configDir = cliConfigDir(env);
  const envUrl = env.HANGAR_API_URL?.trim();
  const envToken = env.HANGAR_API_TOKEN?.trim();
  const file = envUrl && envToken ? undefined : readCliConfig(configDir);
  const apiUrl = envUrl || file?.api_url || DEFAULT_API_URL;
  const token = envToken || file?.token || undefined;
  return {
    apiUrl,
    token,
    configDir,
    sources: {
      apiUrl: envUrl ? 'env' : file?.api_url ? 'file' : 'default',
      token: envToken ? 'env' : file?.token ? 'file' : 'none',
    },
  };
}

export function noTokenError(): CliError {
  return new CliError(
    'unauthenticated',
    'no API token: run `hangar up` on this host, or set HANGAR_API_TOKEN',
    undefined,
  );
}
