/**
 * The two things the crun driver needs from the rest of the agent, as small interfaces: images
 * (`src/agent/images/`) and the host network (`src/agent/network/`). The driver never imports those
 * modules directly; `crun-driver-factory.ts` adapts them. Stand-ins for tests and for hosts without
 * the real modules live in `standins.ts`.
 * @module
 */
import type { ImageRef } from '../../../api-types/machine.js';
import type { ImageConfig } from './oci-spec.js';

export interface DriverImage {
  name: string;
  digest: string;
  imageRef: ImageRef;
  config: ImageConfig;
  /** Unpacked, shared, read-only lower dir. */
  rootfsDir: string;
}

export interface ImageProvider {
  resolve(image: string, options?: { signal?: AbortSignal }): Promise<DriverImage>;
  /** Mounts an overlay with a fresh upper dir at a path under `machineDir`; answers the merged path. */
  mountRootfs(machineDir: string, lowerDir: string): Promise<string>;
  /**
   * Optional: all of `mountRootfs` (fresh upper dir) but the mount itself, which the caller runs
   * (`mounter -t overlay overlay -o options merged`) in the shim right before the container, saving
   * the agent a process spawn per start. Without it the driver mounts through `mountRootfs`.
   */
  prepareRootfs?(machineDir: string, lowerDir: string): Promise<{ merged: string; options: string; mounter: string }>;
  /** Idempotent. */
  unmountRootfs(machineDir: string): Promise<void>;
  /** Optional: a local store behind `hangar image import|list|gc` (the real ImageStore has one). */
  import?(file: string, name?: string): Promise<{ name: string; digest: string }>;
  list?(): Promise<{ name: string; digest: string; source: string; stored_at?: string }[]>;
  /** Keeps `inUseDigests`, the images of `keepNames` and imported names younger than `importGraceMs`. */
  gc?(inUseDigests: Set<string>, options: { keepNames: string[]; importGraceMs: number }): Promise<{ removed: string[] }>;
}

export interface DriverNetwork {
  netnsPath?: string;
  ipv6: string;
  ipv4?: string;
  gateway6?: string;
  gateway4?: string;
  dnsServer?: string;
}

export interface NetworkMachine {
  machineId: string;
  orgId: number;
  appName: string;
  region?: string;
  processGroup?: string;
  /** `config.dns.skip_registration`: no `.internal` records. */
  skipDns?: boolean;
}

export interface NetworkProvider {
  /** Idempotent; also registers the machine's `.internal` DNS records. */
  attach(machine: NetworkMachine): Promise<DriverNetwork>;
  /** Re-registers DNS of a machine a previous agent attached (after a restart); optional. */
  register?(machine: NetworkMachine, network: DriverNetwork): void;
  /** Removes the namespace and frees the addresses (destroy). Idempotent. */
  detach(machineId: string): Promise<void>;
  /**
   * Optional: removes the namespace and veth of a stopped machine but keeps its addresses; the
   * next `attach` rebuilds them (the driver parks stopped machines when the bridge fills up).
   */
  park?(machineId: string): Promise<void>;
  /** Removes whatever belongs to ids not in `known`. */
  recover(known: Set<string>): Promise<void>;
  close(): Promise<void>;
}
