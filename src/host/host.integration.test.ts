/**
 * `hangar host setup` and `hangar host check` for real, through the compiled entry point, on this
 * machine. Setup changes the host (the same changes CI makes before the suite), so it runs only as
 * root; a fresh machine may need minutes for apt-get.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

function hangar(args: string[], options: { uid?: number; gid?: number; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], uid: options.uid, gid: options.gid });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const notRoot = process.getuid?.() !== 0 ? 'host setup changes the host and needs root' : false;

describe('hangar host (real host)', { skip: notRoot }, () => {
  it('setup makes the host ready; a second setup only reports ok; check then passes', { timeout: 900_000 }, async () => {
    const first = await hangar(['host', 'setup'], { timeoutMs: 840_000 });
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    assert.match(first.stdout, /host setup: (done|nothing to do), the host is ready/);

    const second = await hangar(['host', 'setup']);
    assert.equal(second.code, 0, `${second.stdout}\n${second.stderr}`);
    const steps = second.stdout.split('\n').filter((l) => l.startsWith('  '));
    assert.ok(steps.length >= 5, second.stdout);
    for (const line of steps) assert.match(line, /^ {2}(ok|skip) /, `second setup did something:\n${second.stdout}`);
    assert.match(second.stdout, /host setup: nothing to do, the host is ready/);

    const check = await hangar(['host', 'check']);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /host check: all \d+ required checks pass/);
    assert.match(check.stdout, /info\s+KVM for microVMs/);

    const json = await hangar(['host', 'check', '--json']);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout) as { ok: boolean; results: { id: string; ok: boolean; level: string }[] };
    assert.equal(report.ok, true);
    assert.ok(report.results.some((r) => r.id === 'package:crun' && r.ok));
    assert.ok(report.results.some((r) => r.id === 'cgroup-hybrid' && r.ok));
  });

  it('setup refuses to run without root, and check says root is missing', { timeout: 30_000 }, async () => {
    const setup = await hangar(['host', 'setup'], { uid: 65534, gid: 65534 });
    assert.equal(setup.code, 1);
    assert.match(setup.stderr, /hangar host setup must run as root/);
    assert.equal(setup.stdout, '');
    const check = await hangar(['host', 'check', '--json'], { uid: 65534, gid: 65534 });
    assert.equal(check.code, 1);
    const report = JSON.parse(check.stdout) as { ok: boolean; results: { id: string; ok: boolean; fix?: string }[] };
    const root = report.results.find((r) => r.id === 'root')!;
    assert.equal(root.ok, false);
    assert.match(root.fix!, /run Hangar as root/);
  });
});
