import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_API_URL, readCliConfig, resolveCliConfig, writeCliConfig } from './config.js';
import { emptyDir } from './testing.js';

describe('cli config', () => {
  it('writes config.json with mode 0600 in a 0700 directory and reads it back', () => {
    const dir = join(emptyDir(), 'nested', 'hangar');
    const file = writeCliConfig(dir, { api_url: 'http://10.0.0.1:4280', token: 'tok' });
    assert.equal(file, join(dir, 'config.json'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { api_url: 'http://10.0.0.1:4280', token: 'tok' });
    assert.deepEqual(readCliConfig(dir), { api_url: 'http://10.0.0.1:4280', token: 'tok' });
  });

  it('overwrites an existing file', () => {
    const dir = emptyDir();
    writeCliConfig(dir, { api_url: 'http://a', token: '1' });
    writeCliConfig(dir, { api_url: 'http://b', token: '2' });
    assert.deepEqual(readCliConfig(dir), { api_url: 'http://b', token: '2' });
  });

  it('returns undefined when there is no file', () => {
    assert.equal(readCliConfig(emptyDir()), undefined);
  });

  it('rejects non-string values', () => {
    const dir = emptyDir();
    writeCliConfig(dir, { api_url: 'x', token: 'y' });
    writeFileSync(join(dir, 'config.json'), '{"token": 5}');
    assert.throws(() => readCliConfig(dir), { code: 'invalid_argument', message: `${join(dir, 'config.json')}: token must be a string` });
  });

  it('defaults the API URL and reports where values came from', () => {
    const resolved = resolveCliConfig({ HANGAR_CONFIG_DIR: emptyDir() });
    assert.equal(resolved.apiUrl, DEFAULT_API_URL);
    assert.equal(resolved.token, undefined);
    assert.deepEqual(resolved.sources, { apiUrl: 'default', token: 'none' });
    const dir = emptyDir();
    writeCliConfig(dir, { api_url: 'http://f', token: 'ft' });
    const mixed = resolveCliConfig({ HANGAR_CONFIG_DIR: dir, HANGAR_API_URL: 'http://e' });
    assert.equal(mixed.apiUrl, 'http://e');
    assert.equal(mixed.token, 'ft');
    assert.deepEqual(mixed.sources, { apiUrl: 'env', token: 'file' });
  });
});
