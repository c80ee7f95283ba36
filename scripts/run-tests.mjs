#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's test runner and prints a plain
// "N passed, N failed" line at the end. Run through `npm test`, which builds first.
// Usage: node scripts/run-tests.mjs [substring ...]   (only test files whose path contains one)
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(path));
    else if (entry.name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

const files = findTests(join(root, 'dist'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/; did the build run?');
  process.exit(1);
}

// TAP on stdout so the summary can be read; the runner's own "# pass/# fail" lines stay visible.
const child = spawn(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=tap', ...files], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let pass = 0;
let fail = 0;
let buffered = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  buffered += chunk.toString();
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    const m = /^# (pass|fail) (\d+)$/.exec(line);
    if (m) m[1] === 'pass' ? (pass = Number(m[2])) : (fail = Number(m[2]));
  }
});
child.on('exit', (code) => {
  console.log(`${pass} passed, ${fail} failed`);
  process.exit(code === 0 && fail === 0 ? 0 : 1);
});
