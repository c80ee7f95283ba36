/**
 * The API server's connection to one agent: typed RPC calls (see `api-types/agent.ts`) and a
 * follower of the agent's event stream that hands every change to the catalog, resuming from the
 * last applied sequence number after any disconnect.
 * @module
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { Readable } from 'node:stream';
import type {
  AgentEvent, AgentImage, AgentImageGcResult, AgentImageImportResult, AgentInfo, AgentLogLine, AgentMachine, AgentMachineSpec, AgentOpResult,
} from '../api-types/agent.js';
import type { ExecResponse, ProcessStat } from '../api-types/machine.js';
import { HangarError, hangarErrorFromBody } from '../core/errors.js';
import { parseNdjson } from '../core/ndjson.js';
import type { Logger } from '../core/logger.js';

export interface AgentLinkOptions {
  url: string;
  token: string;
  logger: Logger;
  /** Per-call timeout; long operations (stop with a timeout, exec) add their own time to it. */
  timeoutMs?: number;
}

export class AgentLink {
  readonly url: string;
  private readonly token: string;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private follower: AbortController | undefined;
  /**
   * Kept-alive connections to the agent, so an RPC needs no TCP handshake. Idle ones hold no
   * reference on the event loop, and `close` leaves calls in flight to finish.
   */
  private readonly pool = new HttpAgent({ keepAlive: true });
  /** True while the event stream is connected; machines of an unreachable host report it. */
  reachable = false;

  constructor(options: AgentLinkOptions) {
    this.url = options.url.replace(/\/$/, '');
    this.token = options.token;
    this.logger = options.logger;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  info(): Promise<AgentInfo> {
    return this.call('GET', '/agent/v1/info');
  }
  list(): Promise<AgentMachine[]> {
    return this.call('GET', '/agent/v1/machines');
  }
  create(spec: AgentMachineSpec, start: boolean): Promise<AgentOpResult> {
    return this.call('POST', '/agent/v1/machines', { spec, start });
  }
  update(spec: AgentMachineSpec, start: boolean): Promise<AgentOpResult> {
    return this.call('PUT', `/agent/v1/machines/${spec.id}`, { spec, start });
  }
  start(id: string): Promise<AgentOpResult> {
    return this.call('POST', `/agent/v1/machines/${id}/start`);
  }
  stop(id: string, signal: number | undefined, timeoutMs: number | undefined): Promise<AgentOpResult> {
    return this.call('POST', `/agent/v1/machines/${id}/stop`, { signal, timeout_ms: timeoutMs }, timeoutMs);
  }
  restart(id: string, signal: number | undefined, timeoutMs: number | undefined): Promise<AgentOpResult> {
    return this.call('POST', `/agent/v1/machines/${id}/restart`, { signal, timeout_ms: timeoutMs }, timeoutMs);
  }
  suspend(id: string): Promise<AgentOpResult> {
    return this.call('POST', `/agent/v1/machines/${id}/suspend`);
  }
  signal(id: string, signal: number): Promise<AgentOpResult> {
    return this.call('POST', `/agent/v1/machines/${id}/signal`, { signal });
  }
  exec(id: string, command: string[], stdin: string | undefined, timeoutMs: number): Promise<ExecResponse> {
    return this.call('POST', `/agent/v1/machines/${id}/exec`, { command, stdin, timeout_ms: timeoutMs }, timeoutMs);
  }
  ps(id: string): Promise<ProcessStat[]> {
    return this.call('GET', `/agent/v1/machines/${id}/ps`);
  }
  listImages(): Promise<AgentImage[]> {
    return this.call('GET', '/agent/v1/images');
  }
  gcImages(graceSeconds?: number): Promise<AgentImageGcResult> {
    return this.call('POST', `/agent/v1/images/gc${graceSeconds === undefined ? '' : `?grace=${graceSeconds}`}`, undefined, 600_000);
  }

  /**
   * Streams an image archive to the agent (`POST /agent/v1/images/import`). No overall timeout: an
   * archive may be gigabytes; `signal` cancels. Uses node:http so the agent's answer is read even
   * when it refuses before the whole body went out.
   */
  importImage(body: Readable, options: { name?: string; size?: number; signal?: AbortSignal }): Promise<AgentImageImportResult> {
    const url = new URL(`${this.url}/agent/v1/images/import${options.name ? `?name=${encodeURIComponent(options.name)}` : ''}`);
    return new Promise<AgentImageImportResult>((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${this.token}`, 'content-type': 'application/x-tar' };
      if (options.size !== undefined) headers['content-length'] = options.size;
      const req = httpRequest(url, { method: 'POST', headers, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', (err) => reject(new HangarError('unavailable', `the agent at ${this.url} broke off its answer to an image import: ${reason(err)}`, { cause: err })));
        res.on('end', () => {
          body.unpipe(req);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            reject(new HangarError('unavailable', `the agent at ${this.url} answered an image import with invalid JSON`));
            return;
          }
          if ((res.statusCode ?? 500) >= 300) reject(hangarErrorFromBody(res.statusCode ?? 500, parsed));
          else resolve(parsed as AgentImageImportResult);
        });
      });
      req.on('error', (err) => reject(new HangarError('unavailable', `the agent at ${this.url} did not take the image archive: ${reason(err)}; retry when the host is back`, { cause: err })));
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    });
  }

  destroy(id: string, force: boolean): Promise<AgentOpResult> {
    return this.call('DELETE', `/agent/v1/machines/${id}${force ? '?force=true' : ''}`, undefined, force ? 10_000 : undefined);
  }

  /** A machine's output lines, oldest first; with `follow`, live until `signal` aborts. */
  async *logs(id: string, options: { tail: number; follow: boolean; signal: AbortSignal }): AsyncGenerator<AgentLogLine> {
    let res: Response;
    try {
      res = await fetch(`${this.url}/agent/v1/machines/${id}/logs?tail=${options.tail}&follow=${options.follow}`, {
        headers: { authorization: `Bearer ${this.token}` },
        signal: options.signal,
      });
    } catch (err) {
      if (options.signal.aborted) return;
      throw new HangarError('unavailable', `the agent at ${this.url} did not answer the logs of machine ${id}: ${reason(err)}`, { cause: err });
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      throw hangarErrorFromBody(res.status, text ? JSON.parse(text) : undefined);
    }
    try {
      yield* parseNdjson<AgentLogLine>(res.body as unknown as AsyncIterable<Uint8Array>);
    } catch (err) {
      if (!options.signal.aborted) throw err;
    }
  }

  /**
   * One RPC over node:http with a keep-alive connection pool rather than fetch: undici's fetch
   * (web streams, Request/Response objects) costs ~0.3–0.6 ms more per call here, and every machine
   * start, stop and create pays it on its way to the client.
   */
  private async call<T>(method: string, path: string, body?: unknown, extraMs = 0): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let answer: { status: number; text: string };
    try {
      answer = await this.send(method, path, payload, this.timeoutMs + extraMs);
    } catch (err) {
      throw new HangarError('unavailable', `the agent at ${this.url} did not answer ${method} ${path}: ${reason(err)}; retry when the host is back`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = answer.text ? JSON.parse(answer.text) : undefined;
    } catch {
      throw new HangarError('unavailable', `the agent at ${this.url} answered ${method} ${path} with invalid JSON`);
    }
    if (answer.status < 200 || answer.status >= 300) throw hangarErrorFromBody(answer.status, parsed);
    return parsed as T;
  }

  /**
   * Sends one request; the timer (cleared as soon as the answer is read) destroys it after
   * `timeoutMs`. The pool drops an idle connection a second before the agent's announced
   * keep-alive timeout; should the agent still close one just as a request goes out on it, that
   * request fails with ECONNRESET before the agent read it (it closes only idle connections), so
   * that case alone is sent once more on a fresh connection.
   */
  private send(method: string, path: string, payload: string | undefined, timeoutMs: number, retried = false): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const headers: Record<string, string | number> = { authorization: `Bearer ${this.token}` };
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(payload);
      }
      const req = httpRequest(this.url + path, { method, headers, agent: this.pool }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', fail);
        // A connection lost mid-answer: no 'end' follows.
        res.on('close', () => {
          if (!res.complete) fail(new Error('the connection closed before the whole answer arrived'));
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 500, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
      }, timeoutMs);
      function fail(err: Error): void {
        clearTimeout(timer);
        reject(timedOut ? Object.assign(new Error('timed out'), { name: 'TimeoutError' }) : err);
      }
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!timedOut && !retried && req.reusedSocket && err.code === 'ECONNRESET') {
          clearTimeout(timer);
          this.send(method, path, payload, timeoutMs, true).then(resolve, reject);
          return;
        }
        fail(err);
      });
      req.end(payload);
    });
  }

  /**
   * Follows the agent's event stream from `afterSeq` until `close()`, reconnecting with backoff.
   * `onConnected` runs on every (re)connection before events are read; `onEvent` is awaited in
   * order; `onState` reports connectivity changes.
   */
  follow(
    afterSeq: number,
    onEvent: (event: AgentEvent) => Promise<void>,
    onState: (reachable: boolean) => void,
    onConnected: () => Promise<void> = async () => undefined,
  ): void {
    const controller = new AbortController();
    this.follower = controller;
    let lastSeq = afterSeq;
    const loop = async () => {
      let backoff = 100;
      while (!controller.signal.aborted) {
        try {
          const res = await fetch(`${this.url}/agent/v1/events?after=${lastSeq}`, {
            headers: { authorization: `Bearer ${this.token}` },
            signal: controller.signal,
          });
          if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
          // Catch up on whatever the stream cannot replay (it keeps a bounded history) before reading it.
          await onConnected();
          this.setReachable(true, onState);
          backoff = 100;
          for await (const message of parseNdjson<AgentEvent | { heartbeat: number }>(res.body as unknown as AsyncIterable<Uint8Array>)) {
            if ('heartbeat' in message) continue;
            await onEvent(message);
            lastSeq = Math.max(lastSeq, message.seq);
          }
          throw new Error('stream ended');
        } catch (err) {
          if (controller.signal.aborted) break;
          this.setReachable(false, onState);
          this.logger.warn('agent event stream interrupted; reconnecting', { agent: this.url, err: reason(err), backoffMs: backoff });
          await sleep(backoff, controller.signal);
          backoff = Math.min(backoff * 2, 5_000);
        }
      }
    };
    void loop();
  }

  private setReachable(reachable: boolean, onState: (reachable: boolean) => void): void {
    if (reachable) this.markConnected();
    if (this.reachable === reachable) return;
    this.reachable = reachable;
    onState(reachable);
  }

  private markConnected: () => void = () => undefined;
  /** Resolves once the event stream has connected (and caught up) for the first time. */
  readonly firstConnection = new Promise<void>((resolve) => (this.markConnected = resolve));

  close(): void {
    this.follower?.abort();
  }
}

function reason(err: unknown): string {
  const e = err as { cause?: { code?: string; message?: string }; message?: string; name?: string };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
