/**
 * docs/api.md lists exactly the routes the API server registers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/core/logger.js';
import { createApiServer } from '../../src/server/create-server.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { repoRoot } from '../../src/testkit/paths.js';

test('docs/api.md lists every route and only those', async () => {
  const server = createApiServer({ store: new SqliteStore(':memory:'), region: 'lcl', agents: [], logger: silentLogger });
  const documented = readFileSync(join(repoRoot(), 'docs', 'api.md'), 'utf8')
    .split('\n')
    .map((line) => /^\| (GET|POST|PUT|PATCH|DELETE) \| (\S+) \|/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual([...documented].sort(), [...server.routes].sort());
  await server.close();
});
