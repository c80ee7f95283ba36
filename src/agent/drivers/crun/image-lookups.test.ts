import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ImageLookups } from './image-lookups.js';

test('lookups in an image rootfs are remembered per rootfs, user, argv0 and PATH; misses are not', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hangar-lookups-'));
  try {
    await mkdir(join(root, 'bin'), { recursive: true });
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'bin', 'app'), '#!/bin/sh\n');
    await chmod(join(root, 'bin', 'app'), 0o755);
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\nweb:x:33:44::/www:/bin/sh\n');
    const lookups = new ImageLookups();
    const env = ['PATH=/usr/bin:/bin'];
    assert.equal(await lookups.executable(root, 'app', env), '/bin/app');
    assert.deepEqual(await lookups.user(root, 'web'), { uid: 33, gid: 44 });
    assert.equal(await lookups.executable(root, 'missing', env), undefined);
    // The image dir is immutable for a digest; changing it here shows what was remembered.
    await rm(join(root, 'bin', 'app'));
    await writeFile(join(root, 'etc', 'passwd'), '');
    assert.equal(await lookups.executable(root, 'app', env), '/bin/app', 'remembered');
    assert.deepEqual(await lookups.user(root, 'web'), { uid: 33, gid: 44 }, 'remembered');
    assert.equal(await lookups.executable(root, 'app', ['PATH=/bin']), undefined, 'another PATH is another lookup');
    await assert.rejects(lookups.user(root, 'nobody'), /not in its \/etc\/passwd/);
    await writeFile(join(root, 'bin', 'missing'), '');
    await chmod(join(root, 'bin', 'missing'), 0o755);
    assert.equal(await lookups.executable(root, 'missing', env), '/bin/missing', 'a miss is looked up again');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
