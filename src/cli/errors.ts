/**
 * CLI errors and how they are shown. Every failure prints one line `Error: <what happened>` and,
 * when the error code suggests a way out, one `Hint:` line; stack traces only with `--debug`.
 * Hints are chosen by code (never by matching message text), like flyctl's `flyerr.Suggestion()`.
 * @module
 */
import { HangarError, toHangarError } from '../core/errors.js';
import type { ErrorCode } from '../core/error-codes.js';
import { HangarApiError, HangarNetworkError } from '../client/errors.js';

/** A mistake on the command line: unknown flag, bad value, missing argument. */
export class UsageError extends HangarError {
  readonly hint: string | undefined;

  constructor(message: string, hint?: string) {
    super('invalid_argument', message);
    this.hint = hint;
  }
}

/** A local failure with its own hint (e.g. no token configured). */
export class CliError extends HangarError {
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string) {
    super(code, message);
    this.hint = hint;
  }
}

export interface HintContext {
  app: string | undefined;
  /** Hints the command declared for its own failures. */
  commandHints: Partial<Record<ErrorCode, string>>;
  /** For `not_found` in an app-scoped command: does the app itself exist? */
  appExists?: boolean | undefined;
}

const GENERIC_HINTS: Partial<Record<ErrorCode, string>> = {
  unauthenticated: 'Check the token: `hangar auth token` shows the one in use; set HANGAR_API_TOKEN or re-run `hangar up`',
  permission_denied: 'Use a token that may act on this app or organization',
  lease_conflict: 'wait for the lease to expire or clear it with `hangar machine leases clear ID -a APP`',
  version_conflict: 'The machine changed since it was read; run the command again',
  name_taken: 'Choose another name',
  insufficient_capacity: 'Try a different region with --region, or a smaller --vm-size',
  timeout: 'Wait longer with --wait-timeout, or look at `hangar machine status ID -a APP`',
  payload_too_large: 'Send a smaller request (the limit is 1 MiB)',
  unknown: 'This is a bug in Hangar; run again with --debug and report the output',
};

/** The hint line for an error, or undefined when there is nothing useful to add. */
export function hintFor(err: HangarError, context: HintContext): string | undefined {
  if (err instanceof UsageError || err instanceof CliError) return err.hint;
  if (err instanceof HangarNetworkError) {
    return err.code === 'timeout' ? 'The API did not answer in time; check `hangar up` is healthy' : 'start the platform with `hangar up`';
  }
  const app = context.app ?? 'APP';
  if (err.code === 'not_found' && context.appExists === false) return `Create it with \`hangar apps create ${app}\``;
  const own = context.commandHints[err.code];
  if (own) return own.replaceAll('APP', app);
  if (err.code === 'not_found' && context.app) return `Run \`hangar machine list -a ${context.app}\` to see the app's machines`;
  if (err.code === 'unavailable') return 'The host that owns the machine cannot be reached right now; retry in a moment';
  return GENERIC_HINTS[err.code]?.replaceAll('APP', app);
}

/** The lines written to stderr for an error. */
export function formatError(thrown: unknown, context: HintContext, debug: boolean): string {
  const err = thrown instanceof HangarError ? thrown : toHangarError(thrown);
  const lines = [`Error: ${err.message}`];
  const hint = hintFor(err, context);
  // The API's messages already carry a fix for API users; don't repeat the same command as a hint.
  const suggested = hint && /`([^`]+)`/.exec(hint)?.[1];
  if (hint && !(suggested && err.message.includes(suggested))) lines.push(`Hint: ${hint}`);
  if (debug) {
    lines.push(`code: ${err.code}`);
    if (err instanceof HangarApiError) {
      lines.push(`request: ${err.method} ${err.url} → ${err.responseStatus}${err.requestId ? ` (fly-request-id ${err.requestId})` : ''}`);
    }
    const original = thrown instanceof Error ? thrown : err;
    if (original.stack) lines.push(original.stack);
  }
  return `${lines.join('\n')}\n`;
}
