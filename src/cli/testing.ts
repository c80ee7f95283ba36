/**
 * Test helpers for CLI transcript tests: a tiny fake Machines API on node:http (port 0) that
 * answers canned Fly-format responses and records every request, and `runHangar()` which calls
 * `runCli` in-process with captured stdout/stderr. Test-only; nothing in the CLI imports it.
 * @module
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Machine } from '../api-types/machine.js';
import { runCli } from './main.js';
import { shellWords } from './machine-flags.js';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface Answer {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A canned answer, a sequence (the last one repeats), or a function of the request. */
export type Route = Answer | Answer[] | ((request: RecordedRequest) => Answer);

export interface FakeApi {
  url: string;
  requests: RecordedRequest[];
  /** `METHOD /path` of each request, in order (query strings left out). */
  calls(): string[];
  close(): Promise<void>;
}

/** Starts a fake API; routes are keyed `"GET /v1/apps/web/machines"` (no query string). */
export async function startFakeApi(routes: Record<string, Route>): Promise<FakeApi> {
  const requests: RecordedRequest[] = [];
  const served = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const text = Buffer.concat(chunks).toString('utf8');
      const request: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: text ? (JSON.parse(text) as unknown) : undefined,
      };
      requests.push(request);
      const key = `${request.method} ${request.path}`;
      const route = routes[key];
      let answer: Answer;
      if (route === undefined) {
        answer = { status: 500, body: { error: `fake API: no canned answer for ${key}`, status: 'unknown' } };
      } else if (typeof route === 'function') {
        answer = route(request);
      } else if (Array.isArray(route)) {
        const index = served.get(key) ?? 0;
        served.set(key, index + 1);
        answer = route[Math.min(index, route.length - 1)]!;
      } else {
        answer = route;
      }
      const status = answer.status ?? 200;
      const headers = { 'content-type': 'application/json; charset=utf-8', 'fly-request-id': 'req-test', ...answer.headers };
      res.writeHead(status, headers);
      res.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    calls: () => requests.map((r) => `${r.method} ${r.path}`),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export interface Transcript {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `hangar <command>` in-process against `api` (or no API) with captured output. */
export async function runHangar(command: string | string[], options: { api?: FakeApi; env?: Record<string, string | undefined> } = {}): Promise<Transcript> {
  const argv = Array.isArray(command) ? command : shellWords('command', command);
  let stdout = '';
  let stderr = '';
  const env: Record<string, string | undefined> = {
    HOME: emptyDir(),
    HANGAR_CONFIG_DIR: join(emptyDir(), 'hangar'),
    ...(options.api ? { HANGAR_API_URL: options.api.url, HANGAR_API_TOKEN: 'test-token' } : {}),
    ...options.env,
  };
  const code = await runCli(argv, {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    env,
  });
  return { code, stdout, stderr };
}

export function emptyDir(): string {
  return mkdtempSync(join(tmpdir(), 'hangar-cli-test-'));
}

export const MACHINE_ID = '3d8d413b29d089';
export const VERSION = '01HQ73A7BFFDF1B6WMGHFZZ4E7';

/** A machine as the API answers it, with fixed ids and times. */
export function fakeMachine(overrides: Partial<Machine> = {}): Machine {
  return {
    id: MACHINE_ID,
    name: 'quirky-machine',
    state: 'started',
    region: 'ams',
    instance_id: VERSION,
    version: VERSION,
    private_ip: 'fdaa:0:1:a7b:1::2',
    config: { image: 'nginx:latest', guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 }, metadata: { fly_process_group: 'app' } },
    image_ref: { registry: 'registry-1.docker.io', repository: 'library/nginx', tag: 'latest', digest: 'sha256:abc', labels: {} },
    created_at: '2024-05-01T12:00:00Z',
    updated_at: '2024-05-01T12:00:05Z',
    host_status: 'ok',
    ...overrides,
  };
}
