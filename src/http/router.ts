/**
 * A small HTTP toolkit on node:http shared by the API server and the agent: a path router with
 * `{param}` segments, a JSON body reader with a size limit, and one error responder that writes the
 * `{error, status}` body and the `fly-request-id` header on every answer.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HangarError, toHangarError } from '../core/errors.js';
import { newRequestId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  requestId: string;
  /** Reads and parses the JSON body; `undefined` when the body is empty. */
  body(): Promise<unknown>;
}

/** A handler returns the value to send as JSON (status 200), a `Reply`, or nothing (already sent). */
export type Handler = (ctx: RequestContext) => Promise<unknown> | unknown;

export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, segments: path.split('/').filter(Boolean), handler });
    return this;
  }
  get(path: string, handler: Handler) { return this.add('GET', path, handler); }
  post(path: string, handler: Handler) { return this.add('POST', path, handler); }
  put(path: string, handler: Handler) { return this.add('PUT', path, handler); }
  patch(path: string, handler: Handler) { return this.add('PATCH', path, handler); }
  delete(path: string, handler: Handler) { return this.add('DELETE', path, handler); }

  /** Every registered route as `METHOD /path/{param}` (docs/api.md is checked against this). */
  list(): string[] {
    return this.routes.map((r) => `${r.method} /${r.segments.join('/')}`);
  }

  /** Finds the route for a request; `methodMismatch` when the path exists under other methods. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } | 'not_found' | 'method_not_allowed' {
    const parts = pathname.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { handler: route.handler, params };
    }
    return pathMatched ? 'method_not_allowed' : 'not_found';
  }
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const seg = pattern[i]!;
    const part = parts[i]!;
    if (seg.startsWith('{') && seg.endsWith('}')) {
      try {
        params[seg.slice(1, -1)] = decodeURIComponent(part);
      } catch {
        return undefined;
      }
    } else if (seg !== part) {
      return undefined;
    }
  }
  return params;
}

export interface DispatchOptions {
  logger: Logger;
  /** Runs before the handler (auth); throw a HangarError to refuse. */
  before?: (ctx: RequestContext) => void | Promise<void>;
}

/** Serves one request through `router`, turning every failure into an error body. */
export async function dispatch(router: Router, req: IncomingMessage, res: ServerResponse, options: DispatchOptions): Promise<void> {
  const requestId = newRequestId();
  res.setHeader('fly-request-id', requestId);
  const url = new URL(req.url ?? '/', 'http://localhost');
  let bodyPromise: Promise<unknown> | undefined;
  const ctx: RequestContext = {
    req,
    res,
    params: {},
    query: url.searchParams,
    requestId,
    body: () => (bodyPromise ??= readJsonBody(req)),
  };
  try {
    const found = router.match(req.method ?? 'GET', url.pathname);
    if (found === 'not_found') throw new HangarError('not_found', `no route for ${req.method} ${url.pathname}`);
    if (found === 'method_not_allowed') throw new HangarError('method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
    ctx.params = found.params;
    await options.before?.(ctx);
    const result = await found.handler(ctx);
    if (res.headersSent || res.writableEnded) return;
    if (result instanceof Reply) {
      for (const [k, v] of Object.entries(result.headers)) res.setHeader(k, v);
      sendJson(res, result.status, result.body);
    } else {
      sendJson(res, 200, result ?? { ok: true });
    }
  } catch (err) {
    const error = toHangarError(err);
    if (error.code === 'unknown') options.logger.error('request failed', { requestId, method: req.method, path: url.pathname, err: String((err as Error)?.stack ?? err) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error.code === 'payload_too_large' || error.code === 'bad_request') res.setHeader('connection', 'close');
    sendJson(res, error.httpStatus, error.toBody());
  } finally {
    // Drain an unread body so keep-alive connections stay usable.
    if (!bodyPromise && !req.readableEnded) req.resume();
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (status === 204 || body === undefined) {
    res.writeHead(status === 200 && body === undefined ? 204 : status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads the request body as JSON (≤ 1 MiB). Empty body → undefined. */
export function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(new HangarError('payload_too_large', `request body of ${declared} bytes exceeds the 1 MiB limit`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(new HangarError('payload_too_large', `request body exceeds the 1 MiB limit`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (err) => {
      if (!failed) reject(new HangarError('bad_request', `could not read the request body: ${err.message}`));
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '' || text === 'null') {
        resolve(undefined);
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new HangarError('bad_request', `request body is not valid JSON: ${(err as Error).message}`));
      }
    });
  });
}

/** Reads a boolean query parameter (`true`, `1`, `false`, `0`); throws naming the parameter otherwise. */
export function queryBool(query: URLSearchParams, name: string): boolean | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new HangarError('invalid_argument', `query parameter ${name}: expected true or false, got ${JSON.stringify(raw)}`);
}

/** Reads an integer query parameter within bounds; throws naming the parameter otherwise. */
export function queryInt(query: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new HangarError('invalid_argument', `query parameter ${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}
