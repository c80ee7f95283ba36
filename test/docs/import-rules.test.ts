/**
 * The import rule of docs/architecture.md, checked on every source file: pure parts import nothing
 * above them, and the top-level parts (server, agent, cli, proxy) never import each other; only
 * `src/up`, `src/main.ts`, `src/testkit` and tests join parts together.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../../src/testkit/paths.js';

const ALLOWED: Record<string, string[]> = {
  'api-types': [],
  core: ['api-types'],
  http: ['core', 'api-types'],
  store: ['core', 'api-types'],
  scheduler: ['core', 'api-types'],
  client: ['core', 'api-types'],
  server: ['core', 'api-types', 'http', 'store', 'scheduler'],
  agent: ['core', 'api-types', 'http'],
  cli: ['core', 'api-types', 'client'],
  proxy: ['core', 'api-types', 'client', 'http'],
  host: ['core', 'api-types'],
};
const COMPOSERS = new Set(['up', 'testkit', 'main.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

test('top-level parts import only what docs/architecture.md allows', () => {
  const src = join(repoRoot(), 'src');
  const violations: string[] = [];
  for (const file of sources(src)) {
    const part = relative(src, file).split('/')[0]!;
    if (COMPOSERS.has(part) || file.endsWith('.test.ts') || file.endsWith('.conformance.ts')) continue;
    const allowed = new Set([part, ...(ALLOWED[part] ?? [])]);
    for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)) {
      const target = relative(src, resolve(dirname(file), match[1]!)).split('/')[0]!;
      if (!allowed.has(target)) violations.push(`${relative(src, file)} imports ${match[1]} (${part} → ${target})`);
    }
  }
  assert.deepEqual(violations, []);
});
