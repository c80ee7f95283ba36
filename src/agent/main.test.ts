import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { AgentMachine, AgentOpResult } from '../api-types/agent.js';
import { silentLogger } from '../core/logger.js';
import { AgentUsageError, parseAgentArgs, runAgentMain } from './main.js';
import { spec, tempDir } from './testing/agent-fixtures.js';
import { until } from '../testkit/waiting.js';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.remove());

describe('parseAgentArgs', () => {
  test('defaults and flags', () => {
    const flags = parseAgentArgs(['--data-dir', '/d'], {});
    assert.deepEqual(flags, { dataDir: '/d', listen: { host: '127.0.0.1', port: 4281 }, region: 'lcl', driver: 'fake', tokenFile: '/d/agent-token' });
    assert.equal(parseAgentArgs([], { HANGAR_DATA_DIR: '/srv/h' }).dataDir, '/srv/h/agent');
    assert.deepEqual(parseAgentArgs(['--listen', '[::1]:9', '--region', 'ams', '--host-id', 'h', '--token-file', '/t'], {}).listen, { host: '::1', port: 9 });
  });
  test('errors name the flag and the way out', () => {
    assert.throws(() => parseAgentArgs(['--driver', 'kvm'], {}), (e: unknown) => e instanceof AgentUsageError && /--driver: unknown driver "kvm"; choose one of: crun, fake, runc/.test(e.message));
    assert.throws(() => parseAgentArgs(['--listen', 'localhost'], {}), /--listen: expected HOST:PORT/);
    assert.throws(() => parseAgentArgs(['--region', 'Amsterdam'], {}), /--region/);
    assert.throws(() => parseAgentArgs(['--bogus'], {}), /known flags: --data-dir/);
  });
});

describe('runAgentMain', () => {
  test('creates a 0600 token file, warns about the fake driver, serves, and stops on abort', async () => {
    const lines: string[] = [];
    const controller = new AbortController();
    let url = '';
    const done = runAgentMain(['--data-dir', tmp.dir, '--listen', '127.0.0.1:0'], {
      stderr: (l) => lines.push(l), logger: silentLogger, signal: controller.signal, onListening: (u) => (url = u),
    });
    await until('listening', () => url !== '', 5000, 10);
    const tokenFile = join(tmp.dir, 'agent-token');
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    assert.ok(token.length >= 32);
    assert.ok(lines.some((l) => /WARNING: the fake driver runs nothing/.test(l)));
    assert.ok(lines.every((l) => !l.includes(token)), 'the token is never printed');
    const res = await fetch(`${url}/agent/v1/info`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    controller.abort();
    assert.equal(await done, 0);
  });

  test('uses an existing token file as is', async () => {
    const tokenFile = join(tmp.dir, 'my-token');
    writeFileSync(tokenFile, 'preset-token\n', { mode: 0o600 });
    const controller = new AbortController();
    let url = '';
    const done = runAgentMain(['--data-dir', join(tmp.dir, 'agent'), '--listen', '127.0.0.1:0', '--token-file', tokenFile], {
      stderr: () => {}, logger: silentLogger, signal: controller.signal, onListening: (u) => (url = u),
    });
    await until('listening', () => url !== '', 5000, 10);
    assert.equal((await fetch(`${url}/agent/v1/info`, { headers: { authorization: 'Bearer preset-token' } })).status, 200);
    controller.abort();
    await done;
  });
});

describe('agent as a child process', () => {
  const mainJs = join(fileURLToPath(new URL('.', import.meta.url)), 'main.js');

  function launch(dataDir: string): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
    const child = spawn(process.execPath, [mainJs, '--data-dir', dataDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`agent did not start: ${text}`));
      }, 8000);
      child.stderr!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(text);
        if (match) {
          clearTimeout(timer);
          resolve({ child, url: match[1]!, exited });
        }
      });
    });
  }

  test('kill -9 mid-life, restart on the same data dir: machines come back; SIGTERM exits 0', { timeout: 20_000 }, async () => {
    const first = await launch(tmp.dir);
    const token = readFileSync(join(tmp.dir, 'agent-token'), 'utf8').trim();
    const call = async (base: string, method: string, path: string, body?: unknown) => {
      const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return (await res.json()) as any;
    };
    const keeps = spec();
    const once = spec({ config: { restart: { policy: 'no' } } });
    assert.equal(((await call(first.url, 'POST', '/agent/v1/machines', { spec: keeps, start: true })) as AgentOpResult).machine.state, 'started');
    await call(first.url, 'POST', '/agent/v1/machines', { spec: once, start: true });
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await launch(tmp.dir);
    try {
      await until('restart after reboot', async () => ((await call(second.url, 'GET', `/agent/v1/machines/${keeps.id}`)) as AgentMachine).state === 'started', 5000, 10);
      assert.equal(((await call(second.url, 'GET', `/agent/v1/machines/${once.id}`)) as AgentMachine).state, 'stopped');
    } finally {
      second.child.kill('SIGTERM');
    }
    assert.equal(await second.exited, 0);
  });
});
