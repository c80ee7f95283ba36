/**
 * Builds the production crun driver: the real `ImageStore` (src/agent/images) and `HostNetwork`
 * (src/agent/network) adapted to the driver's small provider interfaces. The agent data dir holds
 * `images/`, `machines/`, `network/` and `runtime/` (the OCI runtime's state root).
 * @module
 */
import { join } from 'node:path';
import type { Logger } from '../../../core/logger.js';
import { ImageStore, mountMachineRootfs, normalizeImage, unmountMachineRootfs } from '../../images/image-store.js';
import { overlayMounter, prepareMachineRootfs } from '../../images/overlay.js';
import { HostNetwork, type HostNetworkOptions } from '../../network/host-network.js';
import { CrunDriver, type CrunDriverOptions } from './crun-driver.js';
import type { DriverImage, DriverNetwork, ImageProvider, NetworkProvider } from './providers.js';

export class ImageStoreProvider implements ImageProvider {
  constructor(readonly store: ImageStore) {}

  async resolve(image: string, options: { signal?: AbortSignal } = {}): Promise<DriverImage> {
    const r = await this.store.resolve(image, options);
    return { name: r.name, digest: r.digest, imageRef: r.imageRef, config: r.config, rootfsDir: r.rootfsDir };
  }

  mountRootfs(machineDir: string, lowerDir: string): Promise<string> {
    return mountMachineRootfs(machineDir, lowerDir);
  }

  async prepareRootfs(machineDir: string, lowerDir: string): Promise<{ merged: string; options: string; mounter: string }> {
    return { ...(await prepareMachineRootfs(machineDir, lowerDir)), mounter: overlayMounter() };
  }

  unmountRootfs(machineDir: string): Promise<void> {
    return unmountMachineRootfs(machineDir);
  }

  async import(file: string, name?: string): Promise<{ name: string; digest: string }> {
    const r = await this.store.import(file, name);
    return { name: r.name, digest: r.digest };
  }

  list() {
    return this.store.list();
  }

  gc(inUseDigests: Set<string>, options: { keepNames: string[]; importGraceMs: number }): Promise<{ removed: string[] }> {
    // A machine whose image name is not a valid reference never got an image; nothing to keep.
    const keepNames = options.keepNames.filter((n) => {
      try {
        normalizeImage(n);
        return true;
      } catch {
        return false;
      }
    });
    return this.store.gc(inUseDigests, { keepNames, importGraceMs: options.importGraceMs });
  }
}

export class HostNetworkProvider implements NetworkProvider {
  private ready: Promise<void> | undefined;
  constructor(readonly network: HostNetwork, private readonly options: { ownsNetwork?: boolean } = {}) {}

  private setup(): Promise<void> {
    this.ready ??= this.network.setup().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  async attach(m: { machineId: string; orgId: number; appName: string; region?: string; processGroup?: string; skipDns?: boolean }): Promise<DriverNetwork> {
    await this.setup();
    const net = await this.network.attach({ machineId: m.machineId, orgId: m.orgId, appName: m.appName });
    this.register(m, net);
    return net;
  }

  register(m: { machineId: string; orgId: number; appName: string; region?: string; processGroup?: string; skipDns?: boolean }, net: DriverNetwork): void {
    if (m.skipDns) return;
    this.network.dns.register({
      machineId: m.machineId, appName: m.appName, orgId: m.orgId, region: m.region ?? 'lcl', ipv6: net.ipv6,
      ...(net.ipv4 ? { ipv4: net.ipv4 } : {}), ...(m.processGroup ? { processGroup: m.processGroup } : {}),
    });
  }

  async detach(machineId: string): Promise<void> {
    await this.network.release(machineId);
  }

  /** A stopped machine gives up its veth and netns (the bridge is near its port limit); its addresses stay. */
  async park(machineId: string): Promise<void> {
    await this.network.detach(machineId);
  }

  async recover(known: Set<string>): Promise<void> {
    await this.setup();
    await this.network.recover(known);
  }

  async close(): Promise<void> {
    if (this.options.ownsNetwork !== false) await this.network.close();
  }
}

export interface CrunFactoryOptions {
  dataDir: string;
  hostId: string;
  logger: Logger;
  runtime?: string;
  network?: Partial<HostNetworkOptions>;
  driver?: Partial<CrunDriverOptions>;
}

export function createCrunDriver(options: CrunFactoryOptions): CrunDriver {
  const images = new ImageStoreProvider(new ImageStore({ dir: join(options.dataDir, 'images'), logger: options.logger }));
  const network = new HostNetworkProvider(new HostNetwork({ logger: options.logger, stateDir: join(options.dataDir, 'network'), ...options.network }));
  const driver = new CrunDriver({
    dataDir: options.dataDir, logger: options.logger, images, network,
    ...(options.runtime ? { runtime: options.runtime } : {}),
    ...options.driver,
  });
  network.network.dns.setServingFilter((machineId) => driver.isServing(machineId));
  return driver;
}
