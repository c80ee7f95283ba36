import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { until } from '../../../testkit/waiting.js';
import { processAlive, processRunning } from './procfs.js';
import { requestLine, shellQuote, ShimSpawner, SpawnerUnavailable } from './shim-spawner.js';

import { BUSYBOX } from '../../images/overlay.js';
const noBusybox = existsSync(BUSYBOX) ? undefined : 'needs /bin/busybox (busybox-static)';

/** Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]. */
async function statFields(pid: number): Promise<string[] | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text?.slice(text.lastIndexOf(')') + 2).split(' ');
}

describe('shellQuote and requestLine', { skip: noBusybox }, () => {
  const awkward = ['plain', '', "it's", "''", 'a b\tc', '$HOME `id` $(id)', 'back\\slash', '*', '"double"', '-n', ';&|<>', 'é ü'];

  test('a shell gets every argument back unchanged', () => {
    const script = `eval "set -- ${requestLine(awkward)!.trimEnd().replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$').replaceAll('`', '\\`')}"; for a in "$@"; do printf '%s\\0' "$a"; done`;
    const out = spawnSync(BUSYBOX, ['sh', '-c', script], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(out.stdout.split('\0').slice(0, -1), awkward);
  });

  test('quotes with single quotes, a quote as \'\\\'\'', () => {
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    assert.equal(shellQuote(''), `''`);
  });

  test('a field with a newline or NUL cannot travel on one line', () => {
    assert.equal(requestLine(['a', 'b\nc']), undefined);
    assert.equal(requestLine(['a\0']), undefined);
    assert.equal(requestLine(['a', 'b']), `'a' 'b'\n`);
  });
});

describe('ShimSpawner', { skip: noBusybox, timeout: 60_000 }, () => {
  let dir: string;
  const spawners: ShimSpawner[] = [];
  // The test "shim": reports its arguments, env, cwd, stdin and session, then waits for a file.
  const script = `d=$1; shift
printf '%s\\n' "$@" > "$d/args"
echo "$HANGAR_TEST_VAR" > "$d/env"
pwd > "$d/cwd"
readlink /proc/self/fd/0 > "$d/stdin"
echo to-stdout; echo to-stderr >&2
while [ ! -e "$d/go" ]; do sleep 0.02; done
echo done > "$d/ended"
`;
  const newSpawner = () => {
    const s = new ShimSpawner(BUSYBOX, script);
    spawners.push(s);
    return s;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hangar-spawner-'));
  });
  after(async () => {
    for (const s of spawners) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('runs the script with the arguments, its env, cwd /, stdin /dev/null and stdio on the files; reaps it when it ends', async () => {
    const s = newSpawner();
    const out = join(dir, 'out.log');
    const err = join(dir, 'err.log');
    const pid = await s.launch(out, err, 'HANGAR_TEST_VAR=it works', [dir, "a 'quoted' arg", '$x']);
    assert.ok(pid > 0);
    await until('the shim ran', () => existsSync(join(dir, 'stdin')) && existsSync(out));
    assert.deepEqual((await readFile(join(dir, 'args'), 'utf8')).split('\n').slice(0, -1), ["a 'quoted' arg", '$x']);
    assert.equal((await readFile(join(dir, 'env'), 'utf8')).trim(), 'it works');
    assert.equal((await readFile(join(dir, 'cwd'), 'utf8')).trim(), '/');
    assert.equal((await readFile(join(dir, 'stdin'), 'utf8')).trim(), '/dev/null');
    await until('stdout and stderr in their files', async () => (await readFile(out, 'utf8')) === 'to-stdout\n' && (await readFile(err, 'utf8').catch(() => '')) === 'to-stderr\n');
    // Not in the agent's session (a signal to the agent's process group does not reach it).
    const fields = await statFields(pid);
    const ownSession = (await statFields(process.pid))![3];
    assert.notEqual(fields![3], ownSession);
    assert.equal(processAlive(pid), true);
    await writeFile(join(dir, 'go'), '');
    await until('the shim ended', () => existsSync(join(dir, 'ended')));
    // Not running at once (the driver's test for a vanished shim), reaped within ~1 s by the same
    // spawner, which stays up while idle (it must, or the shims it started would lose their parent).
    const spawnerPid = s.pid;
    await until('the ended shim to stop running', () => !processRunning(pid), 500);
    await until('the ended shim to be reaped', () => !processAlive(pid), 2500);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(s.pid, spawnerPid, 'the idle spawner is still the same process');
    assert.equal(processRunning(spawnerPid!), true, 'the idle spawner still runs');
  });

  test('many launches at once each get their own pid', async () => {
    const s = newSpawner();
    const dirs = Array.from({ length: 20 }, (_, i) => join(dir, `many${i}`));
    for (const d of dirs) {
      await mkdir(d);
      await writeFile(join(d, 'go'), '');
    }
    const pids = await Promise.all(dirs.map((d) => s.launch(join(d, 'o'), join(d, 'e'), undefined, [d])));
    assert.equal(new Set(pids).size, 20);
    await Promise.all(pids.map((pid) => until(`shim ${pid} to be reaped`, () => !processAlive(pid))));
  });

  test('shims outlive their spawner; after the spawner died the next launch starts a new one', async () => {
    const s = newSpawner();
    const sub = join(dir, 'survive');
    await mkdir(sub);
    const shim = await s.launch(join(sub, 'o'), join(sub, 'e'), undefined, [sub]);
    const first = s.pid!;
    process.kill(first, 'SIGKILL');
    await until('the spawner death to be noticed', () => s.pid === undefined);
    assert.equal(processAlive(shim), true, 'the shim survives its spawner');
    await mkdir(join(dir, 'n2'));
    await writeFile(join(dir, 'n2', 'go'), '');
    const next = await s.launch(join(dir, 'o2'), join(dir, 'e2'), undefined, [join(dir, 'n2')]);
    assert.ok(next > 0);
    assert.notEqual(s.pid, first);
    await writeFile(join(sub, 'go'), '');
    await until('the orphaned shim to end', () => existsSync(join(sub, 'ended')));
  });

  test('a closed spawner exits and refuses launches (the caller falls back)', async () => {
    const s = newSpawner();
    await mkdir(join(dir, 'n3'));
    await writeFile(join(dir, 'n3', 'go'), '');
    await s.launch(join(dir, 'o3'), join(dir, 'e3'), undefined, [join(dir, 'n3')]);
    const pid = s.pid!;
    await s.close();
    await until('the spawner to exit', () => !processAlive(pid));
    await assert.rejects(s.launch(join(dir, 'o4'), join(dir, 'e4'), undefined, [dir]), SpawnerUnavailable);
  });

  test('a field with a newline, or a line too long for one pipe write, is refused before anything runs', async () => {
    const s = newSpawner();
    await assert.rejects(s.launch(join(dir, 'o5'), join(dir, 'e5'), undefined, [dir, 'a\nb']), SpawnerUnavailable);
    await assert.rejects(s.launch(join(dir, 'o5'), join(dir, 'e5'), undefined, [dir, 'x'.repeat(5000)]), SpawnerUnavailable);
  });

  test('a spawner that cannot start is unavailable, not an error of the start', async () => {
    const s = new ShimSpawner(join(dir, 'no-such-shell'), script);
    spawners.push(s);
    await assert.rejects(s.launch(join(dir, 'o6'), join(dir, 'e6'), undefined, [dir]), SpawnerUnavailable);
  });
});
