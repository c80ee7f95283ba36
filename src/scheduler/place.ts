/**
 * Placement: a pure function from a snapshot of hosts and a request to the host that runs the new
 * machine. Today: hosts in the requested region, fewest live machines first.
 * @module
 */
import { HangarError } from '../core/errors.js';

export interface HostSnapshot {
  id: string;
  region: string;
  reachable: boolean;
  liveMachines: number;
}

export interface PlacementRequest {
  region: string;
}

export function placeMachine(hosts: readonly HostSnapshot[], request: PlacementRequest): HostSnapshot {
  const inRegion = hosts.filter((h) => h.region === request.region);
  const candidates = inRegion.filter((h) => h.reachable);
  if (candidates.length === 0) {
    const regions = [...new Set(hosts.map((h) => h.region))].sort();
    const why = inRegion.length > 0 ? `its hosts are unreachable` : `no host serves it`;
    throw new HangarError(
      'insufficient_capacity',
      `cannot place a machine in region "${request.region}": ${why}; regions with hosts: ${regions.join(', ') || 'none'}`,
    );
  }
  return candidates.reduce((best, h) => (h.liveMachines < best.liveMachines ? h : best));
}
