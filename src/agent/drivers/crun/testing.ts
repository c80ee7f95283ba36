/**
 * Test helpers for the crun driver: whether this host can run it, a driver on a temp data dir with
 * the stand-in providers, and conformance specs made of busybox commands.
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentMachineSpec } from '../../../api-types/agent.js';
import type { ConformanceSpecs } from '../driver.conformance.js';
import { CrunDriver, type CrunDriverOptions } from './crun-driver.js';
import { crunProblems } from './prerequisites.js';
import { BusyboxImages, StandinNetwork } from './standins.js';

/** Why crun tests cannot run here, or undefined when they can. */
export function crunUnavailable(): string | undefined {
  const problems = crunProblems();
  if (!existsSync('/bin/busybox')) problems.push('busybox-static is missing');
  return problems.length > 0 ? problems.join('; ') : undefined;
}

export async function tempDataDir(prefix = 'hangar-crun-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function standinDriver(dataDir: string, options: Partial<CrunDriverOptions> = {}): CrunDriver {
  return new CrunDriver({
    dataDir,
    images: new BusyboxImages(join(dataDir, 'images')),
    network: new StandinNetwork(join(dataDir, 'network')),
    ...options,
  });
}

const exec = (base: AgentMachineSpec, argv: string[]): AgentMachineSpec => ({ ...base, config: { ...base.config, init: { exec: argv } } });

export const busyboxSpecs: ConformanceSpecs = {
  longRunning: (base) => exec(base, ['sleep', '1000']),
  exitsAfter: (base, ms, code) => exec(base, ['sh', '-c', `sleep ${(ms / 1000).toFixed(3)}; exit ${code}`]),
  // tini forwards signals to the app's process group, so the app itself must ignore them.
  ignoresSignals: (base) => exec(base, ['sh', '-c', 'trap "" TERM INT HUP QUIT USR1 USR2; sleep 1000']),
  failsToStart: (base) => exec(base, ['/no/such/entrypoint']),
};

/**
 * The real ImageStore and HostNetwork for tests: a busybox image (testkit) imported as
 * `docker.io/library/busybox:latest`, and a test bridge of its own (name, subnets, netns prefix and
 * DNS port chosen per test file, so parallel test files never meet). Shared by every driver of a
 * test file; `cleanup()` removes the bridge, tables and namespaces.
 */
export async function realProviders(dir: string, net: { bridge: string; ipv4Cidr: string; ipv6Net: number; netnsPrefix: string }) {
  const { buildBusyboxImage, writeOciArchive } = await import('../../../testkit/images.js');
  const { ImageStore } = await import('../../images/image-store.js');
  const { HostNetwork } = await import('../../network/host-network.js');
  const { ImageStoreProvider, HostNetworkProvider } = await import('./factory.js');
  const { silentLogger } = await import('../../../core/logger.js');
  const layout = join(dir, 'layout');
  buildBusyboxImage({ dir: layout, tag: 'latest', cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], files: { 'www/index.html': 'hello from hangar\n' } });
  await writeOciArchive(layout, join(dir, 'busybox.tar'));
  const store = new ImageStore({ dir: join(dir, 'images'), logger: silentLogger });
  await store.import(join(dir, 'busybox.tar'), 'docker.io/library/busybox:latest');
  const hostNetwork = new HostNetwork({
    logger: silentLogger, stateDir: join(dir, 'network'), ...net, dnsPort: 20_000 + Math.floor(Math.random() * 30_000),
  });
  const network = new HostNetworkProvider(hostNetwork, { ownsNetwork: false });
  return {
    images: new ImageStoreProvider(store),
    network,
    cleanup: () => hostNetwork.destroyHostLevel(),
  };
}
