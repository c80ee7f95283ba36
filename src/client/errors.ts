/**
 * Errors the client throws. Every failure is a `HangarError` with a code from the closed set in
 * `core/error-codes.ts`, so callers branch on `err.code`, never on message text:
 *
 * - a non-2xx answer becomes `HangarApiError` (the code comes from the body's `status`, else from
 *   the HTTP status), its message prefixed with the operation and its target;
 * - a request that never got an answer becomes `HangarNetworkError` (code `unavailable`);
 * - a request that took longer than `timeoutMs` becomes `HangarNetworkError` (code `timeout`).
 *
 * Modelled on ky's `HTTPError` (method + URL in the message) and fly-go's `flaps.FlapsError`.
 * @module
 */
import { HangarError, hangarErrorFromBody } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';

/** What the client was doing when it failed; used in messages and kept on the error. */
export interface RequestDescription {
  /** Human words for the call, e.g. `start machine 3d8d413b29d089 (app web)`. */
  operation: string;
  method: string;
  /** The path template, e.g. `/v1/apps/{app_name}/machines/{machine_id}/start`. */
  path: string;
  url: string;
}

/** The API answered with an error body (or at least a non-2xx status). */
export class HangarApiError extends HangarError {
  readonly operation: string;
  readonly method: string;
  readonly path: string;
  readonly url: string;
  /** The HTTP status the server answered with (`httpStatus` is the one the code maps to). */
  readonly responseStatus: number;
  /** The server's message without the operation prefix. */
  readonly serverMessage: string;
  /** The `fly-request-id` header of the answer, when the server sent one. */
  readonly requestId: string | undefined;

  constructor(request: RequestDescription, responseStatus: number, body: unknown, requestId?: string) {
    const parsed = hangarErrorFromBody(responseStatus, body);
    super(parsed.code, `${request.operation}: ${parsed.message}`);
    this.operation = request.operation;
    this.method = request.method;
    this.path = request.path;
    this.url = request.url;
    this.responseStatus = responseStatus;
    this.serverMessage = parsed.message;
    this.requestId = requestId;
  }
}

/** No answer: connection refused, DNS failure, reset, or the client-side timeout fired. */
export class HangarNetworkError extends HangarError {
  readonly operation: string;
  readonly method: string;
  readonly url: string;
  readonly baseUrl: string;

  constructor(code: Extract<ErrorCode, 'unavailable' | 'timeout'>, message: string, request: RequestDescription, baseUrl: string, cause: unknown) {
    super(code, message, { cause });
    this.operation = request.operation;
    this.method = request.method;
    this.url = request.url;
    this.baseUrl = baseUrl;
  }
}

export function networkError(request: RequestDescription, baseUrl: string, cause: unknown): HangarNetworkError {
  return new HangarNetworkError(
    'unavailable',
    `cannot reach the Hangar API at ${baseUrl}: ${describeCause(cause)}; is \`hangar up\` running?`,
    request,
    baseUrl,
    cause,
  );
}

export function timeoutError(request: RequestDescription, baseUrl: string, timeoutMs: number, cause: unknown): HangarNetworkError {
  return new HangarNetworkError(
    'timeout',
    `${request.operation}: request timed out after ${timeoutMs}ms: ${request.method} ${request.url}`,
    request,
    baseUrl,
    cause,
  );
}

/** `fetch failed` hides the useful part (ECONNREFUSED …) in `cause`; dig it out. */
export function describeCause(cause: unknown): string {
  let current: unknown = cause;
  let best = '';
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) current = current.errors[0];
    const record = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof record.code === 'string') {
      const message = typeof record.message === 'string' ? record.message : '';
      return message.includes(record.code) ? message : `${record.code}${message ? ` (${message})` : ''}`;
    }
    // The deepest message is the most specific one (`fetch failed` → `bad port`).
    if (typeof record.message === 'string' && record.message) best = record.message;
    current = record.cause;
  }
  return best || String(cause);
}
