/**
 * The shared driver conformance suite against crun with the real ImageStore (a testkit busybox
 * image) and HostNetwork (a test bridge of this file's own). Skipped, with the reason, on hosts
 * that cannot run containers.
 */
import { after, before } from 'node:test';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFORMANCE_TESTS, runDriverConformance } from '../driver.conformance.js';
import { CrunDriver } from './crun-driver.js';
import { busyboxSpecs, crunUnavailable, realProviders, tempDataDir } from './testing.js';

const unavailable = crunUnavailable();
let root: string;
let providers: Awaited<ReturnType<typeof realProviders>>;
let n = 0;

if (!unavailable) {
  before(async () => {
    root = await tempDataDir('hangar-crun-conf-');
    providers = await realProviders(root, { bridge: 'hgcconf0', ipv4Cidr: '10.251.0.0/16', ipv6Net: 0xc0f, netnsPrefix: 'hcc-' });
  });
  after(async () => {
    await providers?.cleanup().catch(() => {});
    await rm(root, { recursive: true, force: true });
  });
}

runDriverConformance({
  name: unavailable ? `crun (skipped: ${unavailable})` : 'crun',
  newDriver: () => new CrunDriver({ dataDir: join(root, `agent-${++n}`), images: providers.images, network: providers.network }),
  specs: busyboxSpecs,
  ...(unavailable ? { skip: [{ reason: unavailable, tests: [...CONFORMANCE_TESTS] }] } : {}),
});
