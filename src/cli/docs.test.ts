import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from './commands/index.js';

// dist/src/cli/docs.test.js → repository root
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('docs/cli.md', () => {
  it('lists every command', () => {
    const doc = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
    for (const command of COMMANDS) {
      const path = command.path.join(' ');
      const listed = doc.includes(`hangar ${path}`);
      assert.ok(listed, `docs/cli.md does not mention \`hangar ${path}\``);
    }
  });
});

describe('dependency rules', () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const full = join(dir, name);
      return statSync(full).isDirectory() ? files(full) : name.endsWith('.ts') ? [full] : [];
    });
  const imports = (file: string) => [...readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)].map((m) => m[1]!);

  it('src/client imports only src/core and src/api-types', () => {
    for (const file of files(join(ROOT, 'src/client'))) {
      for (const spec of imports(file)) {
        assert.match(spec, /^(\.\/|\.\.\/core\/|\.\.\/api-types\/)/, `${file} imports ${spec}`);
      }
    }
  });

  it('src/cli never imports src/server, src/agent or src/store', () => {
    for (const file of files(join(ROOT, 'src/cli'))) {
      for (const spec of imports(file)) {
        assert.doesNotMatch(spec, /\/(server|agent|store|proxy|scheduler)\//, `${file} imports ${spec}`);
      }
    }
  });
});
