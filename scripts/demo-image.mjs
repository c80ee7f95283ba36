#!/usr/bin/env node
// Builds a tiny web app image (busybox httpd serving "hello from hangar" on port 8080) as an OCI
// archive, offline, for trying Hangar on a host without a registry:
//   node scripts/demo-image.mjs /tmp/hello.tar && ./bin/hangar image import /tmp/hello.tar hello:1
// Needs a build (`npm run build`) and busybox-static (`hangar host setup` installs it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const out = resolve(process.argv[2] ?? 'hello.tar');
const { buildBusyboxImage, writeOciArchive } = await import(new URL('../dist/src/testkit/images.js', import.meta.url).href);
const dir = mkdtempSync(join(tmpdir(), 'hangar-demo-image-'));
try {
  await buildBusyboxImage({
    dir,
    tag: 'hello:1',
    cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    exposedPorts: [8080],
    files: { 'www/index.html': 'hello from hangar\n' },
  });
  await writeOciArchive(dir, out);
  console.log(`wrote ${out} (an OCI archive; import it with: hangar image import ${out} hello:1)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
