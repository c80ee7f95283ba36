/**
 * Per-machine network allocations (slot, veth name, org, app) persisted in `stateDir` as one JSON
 * file, replaced atomically (write to a temporary file, fsync, rename), so a crash leaves either
 * the old or the new file. A machine keeps its slot — and so its addresses — until it is released,
 * across agent restarts and detach/attach cycles. New slots are handed out next-fit (a cursor that
 * wraps), so a freed address is not reused at once while other machines may still cache it.
 * @module
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HangarError } from '../../core/errors.js';
import { defaultVethName, firstSlot, slotVethName } from './addressing.js';

export interface Allocation {
  machineId: string;
  orgId: number;
  appName: string;
  slot: number;
  vethName: string;
}

interface FileShape {
  version: 1;
  nextSlot: number;
  machines: Allocation[];
}

export const ALLOCATIONS_FILE = 'network-allocations.json';

export class AllocationStore {
  private readonly byId = new Map<string, Allocation>();
  private readonly bySlot = new Map<number, Allocation>();
  private readonly byVeth = new Map<string, Allocation>();
  private nextSlot = firstSlot;
  readonly file: string;

  constructor(stateDir: string, private readonly lastSlot: number) {
    mkdirSync(stateDir, { recursive: true });
    this.file = join(stateDir, ALLOCATIONS_FILE);
    let text: string | undefined;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      let parsed: FileShape;
      try {
        parsed = JSON.parse(text) as FileShape;
        if (parsed.version !== 1 || !Array.isArray(parsed.machines)) throw new Error('unexpected shape');
      } catch (err) {
        throw new HangarError('unknown', `network: ${this.file} is not a valid allocation file (${(err as Error).message}); move it away and run \`hangar\` again — machines get new addresses`, { cause: err });
      }
      this.nextSlot = parsed.nextSlot;
      for (const a of parsed.machines) {
        if (a.slot > lastSlot) {
          throw new HangarError('failed_precondition', `network: machine ${a.machineId} holds slot ${a.slot}, outside the configured IPv4 subnet (last slot ${lastSlot}); the ipv4Cidr shrank — use the previous CIDR or destroy the machine`);
        }
        this.index(a);
      }
    }
  }

  private index(a: Allocation): void {
    this.byId.set(a.machineId, a);
    this.bySlot.set(a.slot, a);
    this.byVeth.set(a.vethName, a);
  }

  get(machineId: string): Allocation | undefined {
    return this.byId.get(machineId);
  }

  bySlotNumber(slot: number): Allocation | undefined {
    return this.bySlot.get(slot);
  }

  all(): Allocation[] {
    return [...this.byId.values()];
  }

  /** The machine's allocation, created (and persisted) if it has none. Synchronous, so no races. */
  allocate(m: { machineId: string; orgId: number; appName: string }): Allocation {
    const existing = this.byId.get(m.machineId);
    if (existing) {
      if (existing.orgId !== m.orgId || existing.appName !== m.appName) {
        existing.orgId = m.orgId;
        existing.appName = m.appName;
        this.save();
      }
      return existing;
    }
    const span = this.lastSlot - firstSlot + 1;
    let slot: number | undefined;
    for (let i = 0; i < span; i++) {
      const candidate = firstSlot + ((this.nextSlot - firstSlot + i) % span + span) % span;
      if (!this.bySlot.has(candidate)) {
        slot = candidate;
        break;
      }
    }
    if (slot === undefined) {
      throw new HangarError('insufficient_capacity', `network: all ${span} addresses of this host's IPv4 subnet are allocated; destroy machines or configure a larger ipv4Cidr`);
    }
    let vethName = defaultVethName(m.machineId);
    if (this.byVeth.has(vethName)) vethName = slotVethName(slot);
    const allocation: Allocation = { machineId: m.machineId, orgId: m.orgId, appName: m.appName, slot, vethName };
    this.index(allocation);
    this.nextSlot = slot + 1 > this.lastSlot ? firstSlot : slot + 1;
    this.save();
    return allocation;
  }

  release(machineId: string): boolean {
    const a = this.byId.get(machineId);
    if (!a) return false;
    this.byId.delete(machineId);
    this.bySlot.delete(a.slot);
    this.byVeth.delete(a.vethName);
    this.save();
    return true;
  }

  private save(): void {
    const body: FileShape = { version: 1, nextSlot: this.nextSlot, machines: this.all() };
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(body, null, 1)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }
}
