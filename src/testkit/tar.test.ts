import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTar, opaqueWhiteout, whiteout, writeTarFile } from './tar.js';

describe('tar writer', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-tar-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes files, dirs, symlinks, hard links and long names that GNU tar reads back', { timeout: 10_000 }, () => {
    const longPath = `${'deep/'.repeat(40)}file-with-a-long-name.txt`; // > 155+100: needs PAX
    const mediumPath = `${'a'.repeat(120)}/b.txt`; // fits ustar prefix + name
    const archive = createTar([
      { type: 'dir', path: 'etc' },
      { type: 'file', path: 'etc/hello', data: 'hi\n', mode: 0o640 },
      { type: 'file', path: '/bin/tool', data: Buffer.from([0, 1, 2, 255]), mode: 0o755 },
      { type: 'symlink', path: 'bin/alias', target: 'tool' },
      { type: 'link', path: 'bin/hard', target: 'bin/tool' },
      { type: 'file', path: longPath, data: 'long' },
      { type: 'file', path: mediumPath, data: 'medium' },
      { type: 'symlink', path: 'far', target: `/${'t'.repeat(150)}` },
      whiteout('etc/gone'),
      opaqueWhiteout('var/cache'),
    ]);
    assert.equal(archive.length % 512, 0);
    const file = join(dir, 'a.tar');
    writeFileSync(file, archive);
    const out = join(dir, 'out');
    spawnSync('mkdir', ['-p', out]);
    const res = spawnSync('tar', ['-xf', file, '-C', out], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.equal(readFileSync(join(out, 'etc/hello'), 'utf8'), 'hi\n');
    assert.equal(statSync(join(out, 'etc/hello')).mode & 0o777, 0o640);
    assert.deepEqual([...readFileSync(join(out, 'bin/tool'))], [0, 1, 2, 255]);
    assert.equal(statSync(join(out, 'bin/tool')).mode & 0o777, 0o755);
    assert.equal(readlinkSync(join(out, 'bin/alias')), 'tool');
    assert.equal(statSync(join(out, 'bin/hard')).ino, statSync(join(out, 'bin/tool')).ino);
    assert.equal(readFileSync(join(out, longPath), 'utf8'), 'long');
    assert.equal(readFileSync(join(out, mediumPath), 'utf8'), 'medium');
    assert.equal(readlinkSync(join(out, 'far')), `/${'t'.repeat(150)}`);
    assert.ok(lstatSync(join(out, 'etc/.wh.gone')).isFile());
    assert.ok(lstatSync(join(out, 'var/cache/.wh..wh..opq')).isFile());
  });

  it('is deterministic', () => {
    const entries = [{ type: 'file' as const, path: 'x', data: 'y' }];
    assert.deepEqual(createTar(entries), createTar(entries));
  });

  it('streams large files from disk', { timeout: 10_000 }, async () => {
    const src = join(dir, 'big.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 7, 7);
    writeFileSync(src, data);
    const file = join(dir, 'b.tar');
    await writeTarFile(file, [{ type: 'file', path: 'big.bin', source: src, size: data.length }, { type: 'file', path: 'small', data: 's' }]);
    const res = spawnSync('tar', ['-tvf', file], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /3145735 .*big\.bin/);
    assert.match(res.stdout, /small/);
  });
});
