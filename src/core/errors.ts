/**
 * `HangarError` is the one error type that crosses boundaries: the API server turns it into an
 * error body, the agent sends it to the server as a code, and the client turns a body back into it.
 * @module
 */
import { ERROR_CODES, type ErrorCode, httpStatusOf, isErrorCode } from './error-codes.js';

export interface ErrorBody {
  error: string;
  status: ErrorCode;
}

export class HangarError extends Error {
  override readonly name = 'HangarError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  get httpStatus(): number {
    return httpStatusOf(this.code);
  }

  toBody(): ErrorBody {
    return { error: this.message, status: this.code };
  }
}

/** Normalizes anything thrown at a boundary; unexpected errors become `unknown` and keep their cause. */
export function toHangarError(err: unknown): HangarError {
  if (err instanceof HangarError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new HangarError('unknown', `internal error: ${message}`, { cause: err });
}

/** Reads an error body received over HTTP (from the API server or an agent). */
export function hangarErrorFromBody(httpStatus: number, body: unknown): HangarError {
  if (body && typeof body === 'object') {
    const { error, status, message } = body as Record<string, unknown>;
    const text = typeof message === 'string' ? message : typeof error === 'string' ? error : undefined;
    if (text !== undefined) {
      return new HangarError(isErrorCode(status) ? status : codeForHttpStatus(httpStatus), text);
    }
  }
  return new HangarError(codeForHttpStatus(httpStatus), `HTTP ${httpStatus} with an unreadable error body`);
}

/** The most specific code for a bare HTTP status (used only when a body carries no code). */
export function codeForHttpStatus(httpStatus: number): ErrorCode {
  const byStatus: Record<number, ErrorCode> = {
    400: 'bad_request', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found',
    405: 'method_not_allowed', 408: 'timeout', 409: 'version_conflict', 412: 'failed_precondition',
    413: 'payload_too_large', 422: 'invalid_argument', 503: 'unavailable',
  };
  return byStatus[httpStatus] ?? 'unknown';
}

export const notFound = (what: string) => new HangarError('not_found', `${what} not found`);
export const invalidArgument = (message: string) => new HangarError('invalid_argument', message);
export const failedPrecondition = (message: string) => new HangarError('failed_precondition', message);

export { ERROR_CODES, type ErrorCode };
