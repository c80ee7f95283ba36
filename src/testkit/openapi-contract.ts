/**
 * Validates API responses against Fly's OpenAPI document (`shared/spec/machines-openapi.json`),
 * the way Firecracker's test client checks every call against its swagger file. Tests plug
 * `checkResponse` into the client's `onResponse` hook, so every response a test receives is checked.
 *
 * One deliberate widening: the document's `main.statusCode` enum (the `status` of an error body) lists
 * four of Fly's codes; Hangar answers with its own closed set, a documented superset
 * (`docs/errors.md`), so the enum is replaced by that set before validating.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ERROR_CODES } from '../core/error-codes.js';
import { repoRoot } from './paths.js';

const require = createRequire(import.meta.url);
// ajv is CommonJS; its 2020-12 build is what OpenAPI 3.1 schemas are written in.
const Ajv2020 = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;

export const SPEC_PATH = join(repoRoot(), '..', 'shared', 'spec', 'machines-openapi.json');

export interface ResponseInfo {
  method: string;
  /** Path template as in the document, e.g. `/v1/apps/{app_name}/machines/{machine_id}`. */
  path: string;
  status: number;
  body: unknown;
}

type ValidateFn = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null };

export class OpenApiContract {
  private readonly spec: { paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>> };
  private readonly ajv: InstanceType<typeof Ajv2020>;
  private readonly compiled = new Map<string, ValidateFn>();
  /** Every (method, path, status) checked so far, for coverage reports. */
  readonly seen = new Set<string>();

  constructor(specPath = SPEC_PATH) {
    const spec = JSON.parse(readFileSync(specPath, 'utf8'));
    spec.components.schemas['main.statusCode'].enum = Object.keys(ERROR_CODES);
    this.spec = spec;
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
    addFormats(this.ajv);
    this.ajv.addSchema(spec, 'spec.json');
  }

  static available(specPath = SPEC_PATH): boolean {
    return existsSync(specPath);
  }

  /** Returns a list of problems (empty when the response matches the document). */
  check(info: ResponseInfo): string[] {
    const where = `${info.method} ${info.path} → ${info.status}`;
    this.seen.add(where);
    const operation = this.spec.paths[info.path]?.[info.method.toLowerCase()];
    if (!operation) return [`${where}: the OpenAPI document has no such operation`];
    const declared = operation.responses?.[String(info.status)];
    if (!declared) {
      if (info.status >= 400) return this.validate(where, { $ref: 'spec.json#/components/schemas/ErrorResponse' }, info.body);
      return [`${where}: status ${info.status} is not declared (declared: ${Object.keys(operation.responses ?? {}).join(', ')})`];
    }
    const schema = declared.content?.['application/json']?.schema;
    if (!schema) return []; // declared without a body schema: any body (Fly sends {"ok":true} on some)
    return this.validate(where, JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"spec.json#/components/')), info.body);
  }

  private validate(where: string, schema: object, body: unknown): string[] {
    const key = JSON.stringify(schema);
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(schema) as ValidateFn;
      this.compiled.set(key, fn);
    }
    if (fn(body)) return [];
    return (fn.errors ?? []).map((e) => `${where}: body${e.instancePath} ${e.message}`);
  }
}
