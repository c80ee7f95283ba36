import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot } from '../testkit/paths.js';
import { childrenOf, waitForUp } from '../testkit/processes.js';
import { freeLoopbackPort } from '../testkit/registry.js';
import { SERVER_MALLOC_ENV, SERVER_V8_FLAGS, serverProcessEnv } from './server-process.js';

const BIN = join(repoRoot(), 'bin', 'hangar');

/** The environment of a process without the malloc settings, as a user's shell would have it. */
function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(SERVER_MALLOC_ENV)) delete env[name];
  return env;
}

function procEnviron(pid: number): Record<string, string> {
  return Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
}

const procArgv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

describe('server process launch settings', () => {
  test('bin/hangar passes the same V8 flags and malloc settings', () => {
    const script = readFileSync(BIN, 'utf8');
    const exec = /^exec node (.*) "\$MAIN" "\$@"$/m.exec(script);
    assert.ok(exec, 'bin/hangar should end with `exec node <flags> "$MAIN" "$@"`');
    const flags = exec[1]!.split(/\s+/).filter((f) => f !== '--enable-source-maps');
    assert.deepEqual(flags, SERVER_V8_FLAGS, 'bin/hangar flags differ from SERVER_V8_FLAGS in src/up/server-process.ts');
    for (const [name, value] of Object.entries(SERVER_MALLOC_ENV)) {
      assert.ok(script.includes(`export ${name}="\${${name}:-${value}}"`), `bin/hangar should export ${name} (default ${value})`);
    }
  });

  test('this Node accepts the flags, and the settings reach the process', () => {
    const out = spawnSync(process.execPath, [...SERVER_V8_FLAGS, '-p', 'JSON.stringify({ env: process.env, argv: process.execArgv })'], {
      env: serverProcessEnv(plainEnv()), encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stderr, '', 'node warned about a flag');
    const seen = JSON.parse(out.stdout) as { env: Record<string, string>; argv: string[] };
    for (const [name, value] of Object.entries(SERVER_MALLOC_ENV)) assert.equal(seen.env[name], value, name);
    assert.deepEqual(seen.argv.slice(0, SERVER_V8_FLAGS.length), SERVER_V8_FLAGS);
  });

  test("an operator's own malloc settings win; empty ones count as unset", () => {
    const env = serverProcessEnv({ MALLOC_ARENA_MAX: '4', MALLOC_TRIM_THRESHOLD_: '', PATH: '/bin' });
    assert.equal(env.MALLOC_ARENA_MAX, '4');
    assert.equal(env.MALLOC_TRIM_THRESHOLD_, SERVER_MALLOC_ENV.MALLOC_TRIM_THRESHOLD_);
    assert.equal(env.PATH, '/bin');
  });

  test('`bin/hangar up` runs itself and its agent with them', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hangar-server-process-'));
    const env = { ...plainEnv(), HANGAR_CONFIG_DIR: join(dir, 'cli') };
    const up = spawn(BIN, [
      'up', '--driver', 'fake', '--no-proxy', '--data-dir', join(dir, 'data'),
      '--api-listen', `127.0.0.1:${await freeLoopbackPort()}`, '--agent-listen', `127.0.0.1:${await freeLoopbackPort()}`,
    ], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let agent: number | undefined;
    try {
      await waitForUp(up, () => {});
      const children = childrenOf(up.pid!);
      agent = children.find((pid) => procArgv(pid).includes('agent'));
      assert.ok(agent, `no agent child of hangar up (children: ${children.join(', ')})`);
      for (const [role, pid] of [['hangar up', up.pid!], ['agent', agent]] as const) {
        const environ = procEnviron(pid);
        for (const [name, value] of Object.entries(SERVER_MALLOC_ENV)) assert.equal(environ[name], value, `${role}: ${name}`);
        const argv = procArgv(pid);
        for (const flag of SERVER_V8_FLAGS) assert.ok(argv.includes(flag), `${role} runs without ${flag}: ${argv.join(' ')}`);
      }
    } finally {
      if (up.exitCode === null && up.signalCode === null) {
        up.kill('SIGTERM');
        const exited = await Promise.race([new Promise((r) => up.once('exit', () => r(true))), new Promise((r) => setTimeout(() => r(false), 20_000).unref())]);
        if (!exited) up.kill('SIGKILL');
      }
      // A hard-killed `hangar up` leaves its agent behind, holding our pipes open.
      if (agent !== undefined) {
        try {
          process.kill(agent, 'SIGKILL');
        } catch {
          // already gone, as it should be
        }
      }
      up.stdout!.destroy();
      up.stderr!.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
