/**
 * A test cluster whose agent runs real crun containers: `startCluster` with the production crun
 * driver (real ImageStore + HostNetwork) on a bridge, IPv4 subnet, 6PN net, netns prefix and nft
 * tables of the test's own (never the default `hangar0`, so it cannot meet another test file or a
 * running `hangar up`), plus a local `docker-registry` holding busybox images. `close()` destroys
 * the machines through the API, then removes the host-level network and the registry.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createCrunDriver } from '../agent/drivers/crun/factory.js';
import { crunUnavailable } from '../agent/drivers/crun/testing.js';
import { HostNetwork } from '../agent/network/host-network.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { startCluster, type ClusterOptions, type TestCluster } from './cluster.js';
import { buildBusyboxImage } from './images.js';
import { missingTools, REGISTRY_TOOLS, startRegistry, type TestRegistry } from './registry.js';

export interface CrunClusterOptions extends Omit<ClusterOptions, 'newDriver' | 'hosts'> {
  /**
   * Two lowercase letters/digits naming this test's host resources: bridge `hgk<tag>0`, netns
   * prefix `hk<tag>-`, nft tables `hangar_hgk<tag>0`. Each test file picks its own.
   */
  tag: string;
  /** Third octet source for the IPv4 subnet 10.<n>.0.0/16 (200–250 by convention); default from the tag. */
  subnet?: number;
  logger?: Logger;
}

export interface CrunCluster {
  cluster: TestCluster;
  registry: TestRegistry;
  /** `127.0.0.1:PORT`. */
  registryHost: string;
  images: {
    /** busybox httpd on :8080 serving `hello from hangar v1\n` (Cmd), tag `1`. */
    httpd: string;
    /** The same repository, tag `2`, serving `hello from hangar v2\n`. */
    httpdV2: string;
    /** Manifest digests of the two. */
    httpdDigest: string;
    httpdV2Digest: string;
  };
  network: { bridge: string; netnsPrefix: string; ipv4Cidr: string; ipv6Net: number; nftTable: string };
  /** A new driver on the agent's data dir (for `cluster.restartAgent(0, { newDriver })`). */
  newDriver: (hostId: string, dataDir: string) => ReturnType<typeof createCrunDriver>;
  close(): Promise<void>;
}

/** Why a crun cluster cannot run here (not root, crun, busybox, registry tools), or undefined. */
export function crunClusterUnavailable(): string | undefined {
  const problems: string[] = [];
  const crun = crunUnavailable();
  if (crun) problems.push(crun);
  const missing = missingTools([...REGISTRY_TOOLS, 'umoci', 'nft', 'ip']);
  if (missing.length) problems.push(`missing ${missing.join(', ')}`);
  return problems.length ? problems.join('; ') : undefined;
}

export async function startCrunCluster(options: CrunClusterOptions): Promise<CrunCluster> {
  if (!/^[a-z0-9]{1,4}$/.test(options.tag)) throw new Error(`crun cluster tag ${JSON.stringify(options.tag)}: 1-4 lowercase letters or digits`);
  const logger = options.logger ?? silentLogger;
  const octet = options.subnet ?? 200 + (parseInt(options.tag, 36) % 50);
  const network = {
    bridge: `hgk${options.tag}0`,
    netnsPrefix: `hk${options.tag}-`,
    ipv4Cidr: `10.${octet}.0.0/16`,
    // fdaa:<net>::/32 with a net of the tag's own (Fly and a default hangar use 0).
    ipv6Net: 0xc000 + (parseInt(options.tag, 36) % 0x3fff),
    nftTable: `hangar_hgk${options.tag}0`,
  };
  const newDriver = (hostId: string, dataDir: string) =>
    createCrunDriver({ dataDir, hostId, logger, network: { ...network } });

  const registry = await startRegistry();
  let cluster: TestCluster | undefined;
  const cleanupNetwork = async () => {
    const stateDir = join(registry.storageDir, '..', 'net-cleanup');
    mkdirSync(stateDir, { recursive: true });
    // A fresh instance knows no allocations: destroyHostLevel then removes the bridge, the tables
    // and every namespace with our prefix (recover with an empty known set).
    await new HostNetwork({ logger, stateDir, ...network, dnsPort: 0 }).destroyHostLevel().catch(() => {});
  };
  try {
    const layout = join(registry.storageDir, '..', 'layout');
    const v1 = buildBusyboxImage({ dir: layout, tag: '1', cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], exposedPorts: [8080], files: { 'www/index.html': 'hello from hangar v1\n' } });
    const v2 = buildBusyboxImage({ dir: layout, tag: '2', cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], exposedPorts: [8080], files: { 'www/index.html': 'hello from hangar v2\n' } });
    const httpdDigest = await registry.push(layout, 'hello:1', { from: v1.tag });
    const httpdV2Digest = await registry.push(layout, 'hello:2', { from: v2.tag });
    cluster = await startCluster({ ...options, newDriver });
    const c = cluster;
    let closed = false;
    return {
      cluster: c,
      registry,
      registryHost: registry.host,
      images: { httpd: `${registry.host}/hello:1`, httpdV2: `${registry.host}/hello:2`, httpdDigest, httpdV2Digest },
      network,
      newDriver,
      async close() {
        if (closed) return;
        closed = true;
        const dataDirs = c.agents.map((a) => ({ hostId: a.hostId, dataDir: a.dataDir }));
        // Agents stop without stopping containers (like a crash); a fresh driver that knows no
        // machine then removes every container, mount, cgroup and namespace they left.
        for (const agent of c.agents) await agent.close();
        for (const { hostId, dataDir } of dataDirs) {
          const sweeper = newDriver(hostId, dataDir);
          await sweeper.recover([]).catch(() => {});
          await sweeper.close().catch(() => {});
        }
        await c.close();
        await cleanupNetwork();
        await registry.close();
      },
    };
  } catch (err) {
    await cluster?.close().catch(() => {});
    await cleanupNetwork();
    await registry.close();
    throw err;
  }
}
