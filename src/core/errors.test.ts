/**
 * The error catalogue, its docs and the boundary helpers. The first test is fastify's docs-sync
 * habit: `docs/errors.md` must list exactly the codes of `ERROR_CODES`, with the same HTTP statuses.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, type ErrorCode, httpStatusOf, isErrorCode } from './error-codes.js';
import { HangarError, codeForHttpStatus, hangarErrorFromBody, toHangarError } from './errors.js';

/** The directory holding package.json, found by walking up from this file (dist/src/core). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** Rows of the first markdown table whose header starts with `| Code | HTTP |`. */
function documentedCodes(markdown: string): { code: string; http: number; cells: string[] }[] {
  const lines = markdown.split('\n');
  const header = lines.findIndex((l) => /^\|\s*Code\s*\|\s*HTTP\s*\|/.test(l));
  assert.ok(header >= 0, 'docs/errors.md has no table starting with "| Code | HTTP |"');
  const rows: { code: string; http: number; cells: string[] }[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const code = cells[0]!.replace(/`/g, '');
    rows.push({ code, http: Number(cells[1]), cells });
  }
  return rows;
}

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

describe('docs/errors.md', () => {
  const rows = documentedCodes(readFileSync(join(repoRoot(), 'docs', 'errors.md'), 'utf8'));

  test('lists exactly the codes of ERROR_CODES', () => {
    const documented = rows.map((r) => r.code);
    assert.deepEqual([...documented].sort(), [...CODES].sort());
    assert.equal(new Set(documented).size, documented.length, 'a code is listed twice');
  });

  test('gives each code the HTTP status of ERROR_CODES', () => {
    for (const row of rows) {
      if (!isErrorCode(row.code)) continue;
      assert.equal(row.http, ERROR_CODES[row.code].http, `docs/errors.md: HTTP status of ${row.code}`);
    }
  });

  test('says what each code means and what to do', () => {
    for (const row of rows) {
      assert.equal(row.cells.length, 4, `row ${row.code} should have Code, HTTP, Meaning, What to do`);
      assert.ok(row.cells[2]!.length > 10, `row ${row.code}: meaning is missing`);
      assert.ok(row.cells[3]!.length > 10, `row ${row.code}: what to do is missing`);
    }
  });

  test("keeps Fly's four status values", () => {
    for (const code of ['unknown', 'insufficient_capacity', 'name_taken']) assert.ok(isErrorCode(code), code);
    const text = readFileSync(join(repoRoot(), 'docs', 'errors.md'), 'utf8');
    for (const code of ['unknown', 'insufficient_capacity', 'volume_placement_capacity', 'name_taken']) {
      assert.match(text, new RegExp(`\`${code}\``));
    }
  });
});

describe('ERROR_CODES', () => {
  test('every status is an HTTP error status and every code has a summary', () => {
    for (const code of CODES) {
      const { http, summary } = ERROR_CODES[code];
      assert.ok(http >= 400 && http <= 599, `${code}: ${http}`);
      assert.ok(summary.length > 0, code);
      assert.equal(httpStatusOf(code), http);
    }
  });

  test('isErrorCode accepts the codes only', () => {
    for (const code of CODES) assert.equal(isErrorCode(code), true);
    for (const value of ['', 'Unknown', 'toString', 'constructor', '__proto__', 404, null, undefined, {}]) {
      assert.equal(isErrorCode(value), false, String(value));
    }
  });
});

describe('HangarError', () => {
  test('carries code, status and body', () => {
    const err = new HangarError('not_found', 'machine 1 not found');
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'HangarError');
    assert.equal(err.code, 'not_found');
    assert.equal(err.httpStatus, 404);
    assert.deepEqual(err.toBody(), { error: 'machine 1 not found', status: 'not_found' });
  });

  test('keeps its cause', () => {
    const cause = new Error('disk full');
    assert.equal(new HangarError('unknown', 'x', { cause }).cause, cause);
  });
});

describe('toHangarError', () => {
  test('returns a HangarError unchanged', () => {
    const err = new HangarError('lease_conflict', 'leased');
    assert.equal(toHangarError(err), err);
  });

  test('turns an Error into unknown and keeps it as the cause', () => {
    const original = new TypeError('x is not a function');
    const err = toHangarError(original);
    assert.equal(err.code, 'unknown');
    assert.equal(err.httpStatus, 500);
    assert.equal(err.message, 'internal error: x is not a function');
    assert.equal(err.cause, original);
  });

  test('turns thrown non-errors into unknown', () => {
    assert.equal(toHangarError('boom').message, 'internal error: boom');
    assert.equal(toHangarError(42).code, 'unknown');
    assert.equal(toHangarError(undefined).message, 'internal error: undefined');
  });
});

describe('hangarErrorFromBody', () => {
  test('reads {error, status}', () => {
    const err = hangarErrorFromBody(409, { error: 'leased', status: 'lease_conflict' });
    assert.equal(err.code, 'lease_conflict');
    assert.equal(err.message, 'leased');
  });

  test('the code in the body wins over the HTTP status', () => {
    assert.equal(hangarErrorFromBody(422, { error: 'taken', status: 'name_taken' }).code, 'name_taken');
    assert.equal(hangarErrorFromBody(503, { error: 'full', status: 'insufficient_capacity' }).code, 'insufficient_capacity');
  });

  test('reads the {message} form', () => {
    const err = hangarErrorFromBody(404, { message: 'app not found' });
    assert.equal(err.code, 'not_found');
    assert.equal(err.message, 'app not found');
  });

  test('an unknown status code falls back to the HTTP status', () => {
    const err = hangarErrorFromBody(400, { error: 'bad', status: 'volume_placement_capacity' });
    assert.equal(err.code, 'bad_request');
    assert.equal(err.message, 'bad');
    assert.equal(hangarErrorFromBody(418, { error: 'teapot', status: 'teapot' }).code, 'unknown');
  });

  test('an unreadable body still gives a coded error that names the status', () => {
    for (const body of [undefined, null, 'Bad Gateway', 42, {}, { error: 7 }, []]) {
      const err = hangarErrorFromBody(502, body);
      assert.equal(err.code, 'unknown');
      assert.equal(err.message, 'HTTP 502 with an unreadable error body');
    }
    assert.equal(hangarErrorFromBody(401, '<html>').code, 'unauthenticated');
  });
});

describe('codeForHttpStatus', () => {
  test('maps each status to its most specific code', () => {
    const cases: [number, ErrorCode][] = [
      [400, 'bad_request'], [401, 'unauthenticated'], [403, 'permission_denied'], [404, 'not_found'],
      [405, 'method_not_allowed'], [408, 'timeout'], [409, 'version_conflict'], [412, 'failed_precondition'],
      [413, 'payload_too_large'], [422, 'invalid_argument'], [503, 'unavailable'],
      [500, 'unknown'], [502, 'unknown'], [418, 'unknown'], [200, 'unknown'],
    ];
    for (const [status, code] of cases) assert.equal(codeForHttpStatus(status), code, String(status));
  });

  test('every code it answers has a compatible HTTP status', () => {
    for (let status = 400; status < 600; status++) {
      const code = codeForHttpStatus(status);
      if (code === 'unknown') continue;
      // 422 maps to invalid_argument (400) because name_taken is the only 422 code and it always has a body.
      if (status === 422) continue;
      assert.equal(httpStatusOf(code), status, `${status} → ${code}`);
    }
  });
});
