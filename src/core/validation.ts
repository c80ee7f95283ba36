/**
 * Turns schema failures into `invalid_argument` errors that name the field path, the value received
 * and what was expected, e.g. `config.guest.cpus: expected an integer, got "two"`.
 * @module
 */
import type { z } from 'zod';
import { HangarError } from './errors.js';

export function parseWith<T extends z.ZodType>(schema: T, value: unknown, root = ''): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new HangarError('invalid_argument', describeIssues(result.error.issues, value, root));
}

function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown, root: string): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      const path = [root, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))]
        .filter(Boolean)
        .join('.')
        .replace(/\.\[/g, '[');
      const received = valueAt(input, issue.path as PropertyKey[]);
      const got = received === undefined ? '' : `, got ${preview(received)}`;
      return `${path || 'body'}: ${issue.message}${issue.code === 'custom' ? '' : got}`;
    })
    .join('; ');
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
