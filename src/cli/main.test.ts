import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeCliConfig } from './config.js';
import { emptyDir, fakeMachine, runHangar, startFakeApi } from './testing.js';

describe('hangar (framework and globals)', () => {
  it('prints the command overview with no arguments', async () => {
    const t = await runHangar('');
    assert.equal(t.code, 0);
    assert.match(t.stdout, /^Hangar: a self-hostable Fly\.io\n/);
    assert.match(t.stdout, /\n {2}apps +Manage apps\n {2}machine +Manage machines\n/);
    assert.equal(t.stderr, '');
  });

  it('prints group help for a noun and its aliases', async () => {
    for (const noun of ['machine', 'machines', 'm']) {
      const t = await runHangar(`${noun} --help`);
      assert.equal(t.code, 0);
      assert.match(t.stdout, /Usage:\n {2}hangar machine <command> \[flags\]/);
      assert.match(t.stdout, /\n {2}stop +Stop one or more machines\n/);
    }
  });

  it('prints command help with usage, flags and global flags', async () => {
    const t = await runHangar('machine stop --help');
    assert.equal(t.code, 0);
    assert.match(t.stdout, /Usage:\n {2}hangar machine stop ID\.\.\. \[flags\]\n/);
    assert.match(t.stdout, /-s, --signal SIGNAL/);
    assert.match(t.stdout, /Global Flags:\n {2}-a, --app APP/);
  });

  it('every command has --help', async () => {
    const commands = [
      'apps create', 'apps list', 'apps destroy', 'auth token', 'machine run', 'machine create', 'machine list', 'machine status',
      'machine start', 'machine stop', 'machine restart', 'machine suspend', 'machine kill', 'machine destroy', 'machine update',
      'machine clone', 'machine exec', 'machine cordon', 'machine uncordon', 'machine wait', 'machine leases view', 'machine leases clear',
    ];
    for (const command of commands) {
      const t = await runHangar(`${command} --help`);
      assert.equal(t.code, 0, command);
      assert.match(t.stdout, new RegExp(`Usage:\\n  hangar ${command}`), command);
    }
  });

  it('rejects unknown commands and flags with a hint', async () => {
    const unknown = await runHangar('machine frobnicate');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, "Error: unknown command 'frobnicate' for 'hangar machine'\nHint: Run `hangar machine --help` for the list of commands\n");
    const flag = await runHangar('machine list -a web --bogus');
    assert.equal(flag.code, 1);
    assert.equal(flag.stderr, 'Error: unknown flag: --bogus\nHint: Run `hangar machine list --help` for usage\n');
  });

  it('requires -a for app-scoped commands', async () => {
    const t = await runHangar('machine list');
    assert.equal(t.code, 1);
    assert.equal(t.stderr, 'Error: `hangar machine list` needs an app: pass -a APP (or set HANGAR_APP)\nHint: Run `hangar apps list` to see your apps\n');
  });

  it('reports a missing machine ID', async () => {
    const t = await runHangar('machine stop -a web');
    assert.equal(t.stderr, 'Error: missing machine ID: usage `hangar machine stop ID... [flags]`\nHint: Run `hangar machine stop --help` for usage\n');
  });

  it('explains how to get a token when none is configured', async () => {
    const t = await runHangar('machine list -a web');
    assert.equal(t.code, 1);
    assert.equal(t.stderr, 'Error: no API token: run `hangar up` on this host, or set HANGAR_API_TOKEN\n');
  });

  it('reports an unreachable API with the URL and how to start it', async () => {
    const api = await startFakeApi({});
    await api.close();
    const t = await runHangar('machine list -a web', { env: { HANGAR_API_URL: api.url, HANGAR_API_TOKEN: 't' } });
    assert.equal(t.code, 1);
    const [line1] = t.stderr.split('\n');
    assert.match(line1!, new RegExp(`^Error: cannot reach the Hangar API at ${api.url}: .*ECONNREFUSED.*; is \`hangar up\` running\\?$`));
    // The message already names `hangar up`, so no hint line repeats it.
    assert.equal(t.stderr.split('\n').length, 2);
  });

  it('prints stack traces only with --debug', async () => {
    const api = await startFakeApi({ 'GET /v1/apps/web/machines': { status: 500, body: { error: 'boom', status: 'unknown' } } });
    after(() => api.close());
    const plain = await runHangar('machine list -a web', { api });
    assert.equal(plain.stderr, 'Error: list machines of app web: boom\nHint: This is a bug in Hangar; run again with --debug and report the output\n');
    const debug = await runHangar('machine list -a web --debug', { api });
    assert.match(debug.stderr, /^DEBUG GET http:\/\/127\.0\.0\.1:\d+\/v1\/apps\/web\/machines → 500\n/);
    assert.match(debug.stderr, /\ncode: unknown\nrequest: GET .* → 500 \(fly-request-id req-test\)\n/);
    assert.match(debug.stderr, /\n {4}at /);
  });

  it('accepts global flags before the noun and between noun and verb', async () => {
    const api = await startFakeApi({ 'GET /v1/apps/web/machines': { body: [fakeMachine()] } });
    after(() => api.close());
    for (const command of ['-a web machine list -q', 'machine -a web list -q', 'm ls --app=web -q', 'machines list -aweb -q']) {
      const t = await runHangar(command, { api });
      assert.equal(t.stdout, '3d8d413b29d089\n', command);
    }
  });

  it('reads HANGAR_APP when -a is absent', async () => {
    const api = await startFakeApi({ 'GET /v1/apps/web/machines': { body: [] } });
    after(() => api.close());
    const t = await runHangar('machine list', { api, env: { HANGAR_APP: 'web' } });
    assert.equal(t.stdout, 'No machines are available on this app web\n');
  });
});

describe('configuration', () => {
  it('reads api_url and token from the config file hangar up writes', async () => {
    const api = await startFakeApi({ 'GET /v1/apps/web/machines': { body: [] } });
    after(() => api.close());
    const dir = join(emptyDir(), 'cfg');
    writeCliConfig(dir, { api_url: api.url, token: 'file-token' });
    const t = await runHangar('machine list -a web', { env: { HANGAR_CONFIG_DIR: dir } });
    assert.equal(t.code, 0, t.stderr);
    assert.equal(api.requests[0]!.headers.authorization, 'Bearer file-token');
    const token = await runHangar('auth token', { env: { HANGAR_CONFIG_DIR: dir } });
    assert.equal(token.stdout, 'file-token\n');
  });

  it('lets HANGAR_API_TOKEN and HANGAR_API_URL override the file', async () => {
    const dir = join(emptyDir(), 'cfg');
    writeCliConfig(dir, { api_url: 'http://file.invalid', token: 'file-token' });
    const t = await runHangar('auth token --json', { env: { HANGAR_CONFIG_DIR: dir, HANGAR_API_TOKEN: 'env-token', HANGAR_API_URL: 'http://env.invalid' } });
    assert.deepEqual(JSON.parse(t.stdout), { token: 'env-token', api_url: 'http://env.invalid', source: 'env' });
  });

  it('uses ~/.hangar when HANGAR_CONFIG_DIR is unset', async () => {
    const home = emptyDir();
    writeCliConfig(join(home, '.hangar'), { api_url: 'http://x.invalid', token: 'home-token' });
    const t = await runHangar('auth token', { env: { HOME: home, HANGAR_CONFIG_DIR: undefined } });
    assert.equal(t.stdout, 'home-token\n');
  });

  it('auth token fails clearly without a token', async () => {
    const t = await runHangar('auth token');
    assert.equal(t.code, 1);
    assert.equal(t.stderr, 'Error: no API token: run `hangar up` on this host, or set HANGAR_API_TOKEN\n');
  });

  it('version prints the package version, platform and node, with no API or token needed', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const t = await runHangar('version');
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, `hangar v${pkg.version} ${process.platform}/${process.arch} node ${process.version}\n`);
    const json = await runHangar('version --json');
    assert.deepEqual(JSON.parse(json.stdout), { version: pkg.version, os: process.platform, arch: process.arch, node: process.version });
  });

  it('reports a broken config file', async () => {
    const dir = join(emptyDir(), 'cfg');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), '{nope');
    const t = await runHangar('auth token', { env: { HANGAR_CONFIG_DIR: dir } });
    assert.equal(t.code, 1);
    assert.match(t.stderr, /^Error: .*config\.json is not valid JSON: .*\nHint: Fix or delete it, or re-run `hangar up`\n$/);
  });
});
