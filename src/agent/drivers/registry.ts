/**
 * The drivers an agent can be started with, by name (`hangar agent --driver NAME`). Built-in drivers
 * are listed here; tests and plugins may register more. Keeping the table in one place means the CLI
 * can list the valid names in its error message.
 * @module
 */
import type { Logger } from '../../core/logger.js';
import { HangarError } from '../../core/errors.js';
import type { Driver } from './driver.js';
import { createCrunDriver } from './crun/factory.js';
import { FakeDriver } from './fake/fake-driver.js';

export interface DriverFactoryOptions {
  dataDir: string;
  hostId: string;
  logger: Logger;
  /** Outbound internet for machines (a host setting; off by default and in tests). */
  allowEgress?: boolean;
  /** Host network settings other than the defaults (bridge, subnets, netns prefix; tests). */
  network?: Record<string, string | number>;
}

export type DriverFactory = (options: DriverFactoryOptions) => Driver;

const factories = new Map<string, DriverFactory>([
  ['fake', (o) => new FakeDriver({ hostId: o.hostId })],
  // OCI containers; crun, else runc (same driver, `--driver runc` forces runc).
  ['crun', (o) => createCrunDriver({ dataDir: o.dataDir, hostId: o.hostId, logger: o.logger, network: { ...o.network, allowEgress: o.allowEgress === true } })],
  ['runc', (o) => createCrunDriver({ dataDir: o.dataDir, hostId: o.hostId, logger: o.logger, runtime: 'runc', network: { ...o.network, allowEgress: o.allowEgress === true } })],
]);

export function registerDriver(name: string, factory: DriverFactory): void {
  factories.set(name, factory);
}

export function driverNames(): string[] {
  return [...factories.keys()].sort();
}

export function createDriver(name: string, options: DriverFactoryOptions): Driver {
  const factory = factories.get(name);
  if (!factory) throw new HangarError('invalid_argument', `unknown driver ${JSON.stringify(name)}; choose one of: ${driverNames().join(', ')}`);
  return factory(options);
}
