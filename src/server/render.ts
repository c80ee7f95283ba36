/**
 * Catalog records → wire objects in Fly's shape.
 * @module
 */
import type { OrgMachine } from '../api-types/app.js';
import type { Lease, Machine, MachineEvent } from '../api-types/machine.js';
import type { LeaseRecord, MachineRecord } from '../store/store.js';

export interface RenderOptions {
  summary?: boolean;
  events?: MachineEvent[];
  hostReachable: boolean;
  lease?: LeaseRecord;
  nonce?: string;
}

export function renderMachine(m: MachineRecord, options: RenderOptions): Machine {
  const machine: Machine = {
    id: m.id,
    name: m.name,
    state: m.state,
    region: m.region,
    instance_id: m.version,
    version: m.version,
    private_ip: m.private_ip,
    image_ref: m.image_ref,
    created_at: m.created_at,
    updated_at: m.updated_at,
    cordoned: m.cordoned,
    host_status: options.hostReachable ? 'ok' : 'unreachable',
  };
  if (!options.summary) {
    machine.config = m.config;
    machine.events = options.events ?? [];
    machine.checks = m.checks ?? [];
  }
  if (options.lease && options.lease.expires_at * 1000 > Date.now()) {
    machine.lease = { owner: options.lease.owner, description: options.lease.description, expires_at: options.lease.expires_at };
  }
  if (options.nonce) machine.nonce = options.nonce;
  return machine;
}

export function renderOrgMachine(m: MachineRecord & { app_name: string }): OrgMachine {
  return {
    id: m.id,
    name: m.name,
    app_name: m.app_name,
    state: m.state,
    region: m.region,
    private_ip: m.private_ip,
    version: m.version,
    created_at: m.created_at,
    updated_at: m.updated_at,
    config: { image: m.config.image, guest: m.config.guest, metadata: m.config.metadata ?? {} },
  };
}

/** Leases go out wrapped, the form flyctl decodes (`{status, data}`). */
export function renderLease(lease: LeaseRecord): { status: string; data: Lease } {
  return {
    status: 'success',
    data: { nonce: lease.nonce, expires_at: lease.expires_at, owner: lease.owner, description: lease.description, version: lease.version },
  };
}
