/**
 * The closed set of error codes Hangar answers with, and the one table that maps each code to an
 * HTTP status. Every error body on the wire is `{"error": "<message>", "status": "<code>"}`.
 *
 * Fly's OpenAPI document lists four `status` values (`unknown`, `insufficient_capacity`,
 * `volume_placement_capacity`, `name_taken`); Hangar keeps those meanings and adds codes of its own
 * so that clients can branch on a code instead of matching message text. `docs/errors.md` lists
 * every code; `src/core/errors.test.ts` keeps the two in sync.
 * @module
 */

export const ERROR_CODES = {
  bad_request: { http: 400, summary: 'The request could not be read: malformed JSON, wrong content type, bad query string.' },
  invalid_argument: { http: 400, summary: 'A field failed validation; the message names the field path, the value and the fix.' },
  unauthenticated: { http: 401, summary: 'No token, or a token Hangar does not know.' },
  permission_denied: { http: 403, summary: 'The token is valid but may not act on this organization or app.' },
  not_found: { http: 404, summary: 'The app, machine, lease, metadata key or route does not exist.' },
  method_not_allowed: { http: 405, summary: 'The path exists but not with this HTTP method.' },
  timeout: { http: 408, summary: 'A wait ended before the machine reached the requested state, or an exec command outlived its timeout and was killed.' },
  lease_conflict: { http: 409, summary: 'The machine is leased and the request did not carry the lease nonce.' },
  version_conflict: { http: 409, summary: '`current_version` did not match the machine version; nothing changed.' },
  failed_precondition: { http: 412, summary: 'The machine is in a state that does not allow this operation, or `machine_version` is stale.' },
  payload_too_large: { http: 413, summary: 'The request body is larger than 1 MiB (an image archive: 10 GiB).' },
  name_taken: { http: 422, summary: 'An app with this name already exists.' },
  insufficient_capacity: { http: 503, summary: 'No host can place the machine (no agent in the region, or the host is full).' },
  unavailable: { http: 503, summary: 'The agent that owns the machine cannot be reached right now; retry.' },
  unknown: { http: 500, summary: 'An unexpected failure inside Hangar; the message and the server log say more.' },
} as const satisfies Record<string, { http: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}
