/**
 * Machine operations as the API server performs them: validate against the catalog (state, lease,
 * version), forward to the owning agent, and record the agent's answer. Each machine's operations
 * are serialized here and again on the agent.
 * @module
 */
import type { AgentEvent, AgentMachineSpec, AgentOpResult } from '../../api-types/agent.js';
import type {
  CreateMachineRequest, ExecResponse, MachineConfig, ProcessStat, UpdateMachineRequest, WaitMachineResponse,
} from '../../api-types/machine.js';
import { parseDuration } from '../../core/durations.js';
import { HangarError, notFound } from '../../core/errors.js';
import { normalizeGuest } from '../../core/guest.js';
import { newMachineId, newNonce, newUlid } from '../../core/ids.js';
import { parseImageRef } from '../../core/image-ref.js';
import { KeyedMutex } from '../../core/keyed-mutex.js';
import {
  assertCanPerform, matchesWaitState, type MachineOperation, type MachineState, WAITABLE_STATES, type WaitableState,
} from '../../core/machine-states.js';
import { resolveSignal, signalNumber, STOP_SIGNALS, USER_SIGNALS } from '../../core/signals.js';
import { placeMachine } from '../../scheduler/place.js';
import type { AppRecord, MachineFilter, MachineRecord, Store } from '../../store/store.js';
import type { HostRegistry } from '../host-registry.js';
import type { MachineNotifier } from '../machine-notifier.js';
import { generateMachineName } from './names.js';

export interface MachineServiceOptions {
  store: Store;
  hosts: HostRegistry;
  notifier: MachineNotifier;
  /** Region used when a create request names none. */
  defaultRegion: string;
}

export interface StopParams {
  signal?: unknown;
  timeout?: unknown;
}

export interface WaitParams {
  states: string[];
  timeoutSeconds: number;
  version?: string;
  fromEventId?: string;
  signal?: AbortSignal;
}

const MAX_STOP_TIMEOUT_MS = 300_000;
const DEFAULT_EXEC_TIMEOUT_S = 30;

export class MachineService {
  private readonly store: Store;
  private readonly hosts: HostRegistry;
  private readonly notifier: MachineNotifier;
  private readonly defaultRegion: string;
  private readonly mutex = new KeyedMutex();

  constructor(options: MachineServiceOptions) {
    this.store = options.store;
    this.hosts = options.hosts;
    this.notifier = options.notifier;
    this.defaultRegion = options.defaultRegion;
  }

  /** The machine `id` of `app`, or 404. Destroyed machines are still found (their state says so). */
  async get(app: AppRecord, id: string): Promise<MachineRecord> {
    const machine = await this.store.getMachine(id);
    if (!machine || machine.app_id !== app.id) throw notFound(`machine ${id} in app ${app.name}`);
    return machine;
  }

  list(app: AppRecord, filter: MachineFilter): Promise<MachineRecord[]> {
    return this.store.listMachines(app.id, filter);
  }

  async create(app: AppRecord, orgSlug: string, request: CreateMachineRequest, leaseOwner: string): Promise<{ machine: MachineRecord; nonce?: string }> {
    const config = normalizeGuest(request.config);
    const region = request.region ?? this.defaultRegion;
    const hosts = await this.hostSnapshot();
    const host = placeMachine(hosts, { region });
    if (request.name && (await this.store.findLiveMachineByName(app.id, request.name))) {
      throw new HangarError('invalid_argument', `name: a machine named "${request.name}" already exists in app ${app.name}; choose another name or omit it`);
    }
    let name = request.name;
    while (name === undefined || (request.name === undefined && (await this.store.findLiveMachineByName(app.id, name)))) {
      name = generateMachineName();
    }
    const now = new Date().toISOString();
    const machine: MachineRecord = {
      id: newMachineId(),
      app_id: app.id,
      name,
      region,
      host_id: host.id,
      state: 'created',
      version: newUlid(),
      config,
      private_ip: '',
      image_ref: parseImageRef(config.image),
      cordoned: request.skip_service_registration === true,
      agent_seq: 0,
      created_at: now,
      updated_at: now,
    };
    // Recorded before the agent acts, so the machine's id is never handed out twice; removed again
    // if the agent refuses or cannot be reached, so a failed create leaves nothing behind.
    await this.store.insertMachine(machine);
    await this.store.insertVersion(machine.id, machine.version, config, now);
    return this.mutex.run(machine.id, async () => {
      let result: AgentOpResult;
      try {
        result = await this.hosts.link(host.id).create(this.spec(app, orgSlug, machine), request.skip_launch !== true);
      } catch (err) {
        await this.store.purgeMachine(machine.id);
        // The agent may have acted before the answer was lost (a timeout); take back anything it made.
        if (err instanceof HangarError && err.code === 'unavailable') {
          await this.hosts.link(host.id).destroy(machine.id, true).catch(() => undefined);
        }
        throw err;
      }
      await this.applyResult(result);
      let nonce: string | undefined;
      if (request.lease_ttl) nonce = (await this.acquireLeaseRecord(machine.id, machine.version, leaseOwner, '', request.lease_ttl)).nonce;
      return { machine: (await this.store.getMachine(machine.id))!, nonce };
    });
  }

  async update(app: AppRecord, orgSlug: string, id: string, request: UpdateMachineRequest, nonce: string | undefined, leaseOwner: string) {
    return this.mutex.run(id, async () => {
      const machine = await this.get(app, id);
      await this.checkLease(machine, nonce);
      if (request.current_version && request.current_version !== machine.version) {
        throw new HangarError(
          'version_conflict',
          `machine ${id} is at version ${machine.version}, not current_version ${request.current_version}; fetch the machine again and retry`,
        );
      }
      assertCanPerform(id, machine.state as MachineState, 'update');
      if (request.region && request.region !== machine.region) {
        throw new HangarError('invalid_argument', `region: a machine cannot move from ${machine.region} to ${request.region}; clone it into the new region instead`);
      }
      if (request.name && request.name !== machine.name) {
        throw new HangarError('invalid_argument', `name: a machine's name cannot change (it is "${machine.name}")`);
      }
      const previousMount = machine.config.mounts?.[0]?.volume;
      const nextMount = request.config.mounts?.[0]?.volume;
      if (previousMount !== nextMount) {
        throw new HangarError('invalid_argument', 'config.mounts[0].volume: the attached volume cannot change in place; destroy the machine and create a new one with the volume');
      }
      const config = normalizeGuest(request.config);
      const version = newUlid();
      const updated: MachineRecord = { ...machine, config, version, image_ref: parseImageRef(config.image) };
      const result = await this.hosts.link(machine.host_id).update(this.spec(app, orgSlug, updated), request.skip_launch !== true);
      const now = new Date().toISOString();
      await this.store.insertVersion(id, version, config, now);
      await this.store.setMachineConfig(id, config, version, updated.image_ref, now);
      await this.applyResult(result);
      let leaseNonce: string | undefined;
      if (request.lease_ttl) leaseNonce = (await this.acquireLeaseRecord(id, version, leaseOwner, '', request.lease_ttl)).nonce;
      this.notifier.changed(id);
      return { machine: (await this.store.getMachine(id))!, nonce: leaseNonce };
    });
  }

  async start(app: AppRecord, id: string, nonce: string | undefined): Promise<{ previous_state: string; migrated: boolean; new_host: string }> {
    return this.operate(app, id, nonce, 'start', async (machine, link) => {
      const previous = machine.state;
      await this.applyResult(await link.start(id), machine);
      return { previous_state: previous, migrated: false, new_host: '' };
    });
  }

  async stop(app: AppRecord, id: string, nonce: string | undefined, params: StopParams): Promise<{ ok: true }> {
    const { signal, timeoutMs } = this.stopParams(params);
    return this.operate(app, id, nonce, 'stop', async (machine, link) => {
      await this.applyResult(await link.stop(id, signal, timeoutMs), machine);
      return { ok: true as const };
    });
  }

  async restart(app: AppRecord, id: string, nonce: string | undefined, params: StopParams): Promise<{ ok: true }> {
    const { signal, timeoutMs } = this.stopParams(params);
    return this.operate(app, id, nonce, 'restart', async (_machine, link) => {
      await this.applyResult(await link.restart(id, signal, timeoutMs));
      return { ok: true as const };
    });
  }

  async suspend(app: AppRecord, id: string, nonce: string | undefined): Promise<{ ok: true }> {
    return this.operate(app, id, nonce, 'suspend', async (_machine, link) => {
      await this.applyResult(await link.suspend(id));
      return { ok: true as const };
    });
  }

  async signal(app: AppRecord, id: string, rawSignal: unknown): Promise<{ ok: true }> {
    const name = resolveSignal(rawSignal, USER_SIGNALS);
    if (!name) {
      throw new HangarError('invalid_argument', `signal: ${JSON.stringify(rawSignal)} is not a signal this API sends; use a name such as "SIGTERM" or its number (one of ${USER_SIGNALS.join(', ')})`);
    }
    // Signals are not lease-protected (flyctl sends no nonce for them).
    return this.operate(app, id, undefined, 'signal', async (_machine, link) => {
      await this.applyResult(await link.signal(id, signalNumber(name)));
      return { ok: true as const };
    }, { skipLease: true });
  }

  /** `overrideLease`: an app deleted with force takes its machines down whoever holds their leases. */
  async destroy(app: AppRecord, id: string, nonce: string | undefined, force: boolean, overrideLease = false): Promise<{ ok: true }> {
    return this.operate(app, id, nonce, force ? 'destroy_force' : 'destroy', async (_machine, link) => {
      await this.applyResult(await link.destroy(id, force));
      await this.store.deleteLease(id);
      return { ok: true as const };
    }, { skipLease: overrideLease });
  }

  async exec(app: AppRecord, id: string, command: string[], stdin: string | undefined, timeoutSeconds = DEFAULT_EXEC_TIMEOUT_S): Promise<ExecResponse> {
    const machine = await this.get(app, id);
    assertCanPerform(id, machine.state as MachineState, 'exec');
    return this.hosts.link(machine.host_id).exec(id, command, stdin, timeoutSeconds * 1000);
  }

  async ps(app: AppRecord, id: string): Promise<ProcessStat[]> {
    const machine = await this.get(app, id);
    assertCanPerform(id, machine.state as MachineState, 'ps');
    return this.hosts.link(machine.host_id).ps(id);
  }

  async setCordoned(app: AppRecord, id: string, nonce: string | undefined, cordoned: boolean): Promise<{ ok: true }> {
    return this.mutex.run(id, async () => {
      const machine = await this.get(app, id);
      await this.checkLease(machine, nonce);
      assertCanPerform(id, machine.state as MachineState, 'cordon');
      await this.store.setCordoned(id, cordoned, new Date().toISOString());
      this.notifier.changed(id);
      return { ok: true as const };
    });
  }

  async wait(app: AppRecord, id: string, params: WaitParams): Promise<WaitMachineResponse> {
    const wanted = params.states.length > 0 ? params.states : ['started'];
    for (const state of wanted) {
      if (!(WAITABLE_STATES as readonly string[]).includes(state)) {
        throw new HangarError('invalid_argument', `state: cannot wait for ${JSON.stringify(state)}; use one of ${WAITABLE_STATES.join(', ')}`);
      }
    }
    const wantedStates = wanted as WaitableState[];
    const deadline = Date.now() + params.timeoutSeconds * 1000;
    let machine = await this.get(app, id);
    if (params.version && params.version !== machine.version) {
      const versions = await this.store.listVersions(id);
      if (!versions.some((v) => v.version === params.version)) {
        throw new HangarError('invalid_argument', `version: ${params.version} is not a version of machine ${id}; its current version is ${machine.version}`);
      }
    }
    for (;;) {
      const satisfied = await this.waitSatisfied(machine, wantedStates, params);
      if (satisfied) return satisfied;
      if (machine.state === 'destroyed') {
        throw new HangarError('failed_precondition', `machine ${id} is destroyed and will never reach ${wanted.join(' or ')}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || params.signal?.aborted) {
        throw new HangarError('timeout', `machine ${id} did not reach ${wanted.join(' or ')} within ${params.timeoutSeconds}s; it is ${machine.state}`);
      }
      await this.notifier.next(id, remaining, params.signal);
      machine = await this.get(app, id);
    }
  }

  private async waitSatisfied(machine: MachineRecord, wanted: WaitableState[], params: WaitParams): Promise<WaitMachineResponse | undefined> {
    const events = await this.store.listEvents(machine.id, 50);
    const latestId = events[0]?.id ?? '';
    const answer = (state: string): WaitMachineResponse => ({ ok: true, state, event_id: latestId, version: machine.version });
    // An older version's instance was replaced: it is gone, so it is stopped for anyone waiting on it.
    if (params.version && params.version !== machine.version) {
      if (wanted.some((w) => w === 'stopped' || w === 'settled')) return answer('stopped');
    }
    if (params.fromEventId) {
      const later = events.find((e) => e.id > params.fromEventId! && wanted.some((w) => matchesWaitState(e.status as MachineState, w)));
      return later ? { ok: true, state: later.status, event_id: later.id, version: machine.version } : undefined;
    }
    if (wanted.some((w) => matchesWaitState(machine.state as MachineState, w))) return answer(machine.state);
    return undefined;
  }

  /** Runs a lease-protected operation under the machine's lock after the state check. */
  private operate<T>(
    app: AppRecord, id: string, nonce: string | undefined, op: MachineOperation,
    work: (machine: MachineRecord, link: ReturnType<HostRegistry['link']>) => Promise<T>,
    options: { skipLease?: boolean } = {},
  ): Promise<T> {
    return this.mutex.run(id, async () => {
      const machine = await this.get(app, id);
      if (!options.skipLease) await this.checkLease(machine, nonce);
      assertCanPerform(id, machine.state as MachineState, op);
      return work(machine, this.hosts.link(machine.host_id));
    });
  }

  private stopParams(params: StopParams): { signal: number | undefined; timeoutMs: number | undefined } {
    let signal: number | undefined;
    if (params.signal !== undefined && params.signal !== '') {
      const name = resolveSignal(params.signal, STOP_SIGNALS);
      if (!name) throw new HangarError('invalid_argument', `signal: ${JSON.stringify(params.signal)} cannot stop a machine; use one of ${STOP_SIGNALS.join(', ')}`);
      signal = signalNumber(name);
    }
    let timeoutMs: number | undefined;
    if (params.timeout !== undefined && params.timeout !== '') {
      const raw = params.timeout;
      timeoutMs = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) * 1000 : parseDuration(raw);
      if (timeoutMs === undefined || timeoutMs > MAX_STOP_TIMEOUT_MS) {
        throw new HangarError('invalid_argument', `timeout: ${JSON.stringify(raw)} is not a duration up to 5m; use a value such as "10s"`);
      }
    }
    return { signal, timeoutMs };
  }

  // --- leases -------------------------------------------------------------------------------

  private async checkLease(machine: MachineRecord, nonce: string | undefined): Promise<void> {
    const lease = await this.store.getLease(machine.id);
    if (!lease || lease.expires_at * 1000 <= Date.now() || lease.nonce === nonce) return;
    throw new HangarError(
      'lease_conflict',
      `aborted: machine ID ${machine.id} lease currently held by ${lease.owner}, expires at ${new Date(lease.expires_at * 1000).toISOString()}; pass its nonce in the fly-machine-lease-nonce header or wait for it to expire`,
    );
  }

  async getLease(app: AppRecord, id: string) {
    await this.get(app, id);
    const lease = await this.store.getLease(id);
    if (!lease || lease.expires_at * 1000 <= Date.now()) throw notFound(`lease on machine ${id}`);
    return lease;
  }

  async acquireLease(app: AppRecord, id: string, nonce: string | undefined, owner: string, description: string, ttlSeconds: number) {
    return this.mutex.run(id, async () => {
      const machine = await this.get(app, id);
      assertCanPerform(id, machine.state as MachineState, 'lease');
      const lease = await this.store.getLease(id);
      const held = lease && lease.expires_at * 1000 > Date.now();
      if (held && lease.nonce !== nonce) {
        throw new HangarError(
          'lease_conflict',
          `aborted: machine ID ${id} lease currently held by ${lease.owner}, expires at ${new Date(lease.expires_at * 1000).toISOString()}`,
        );
      }
      return this.acquireLeaseRecord(id, machine.version, owner, description || (held ? lease.description : ''), ttlSeconds, held ? lease.nonce : undefined);
    });
  }

  private async acquireLeaseRecord(machineId: string, version: string, owner: string, description: string, ttlSeconds: number, keepNonce?: string) {
    const lease = {
      machine_id: machineId,
      nonce: keepNonce ?? newNonce(),
      owner,
      description,
      expires_at: Math.floor(Date.now() / 1000) + ttlSeconds,
      version,
    };
    await this.store.putLease(lease);
    return lease;
  }

  async releaseLease(app: AppRecord, id: string, nonce: string | undefined): Promise<void> {
    if (!nonce) throw new HangarError('invalid_argument', 'header fly-machine-lease-nonce is required to release a lease; pass the nonce you got when acquiring it');
    return this.mutex.run(id, async () => {
      await this.get(app, id);
      const lease = await this.store.getLease(id);
      if (!lease || lease.expires_at * 1000 <= Date.now()) throw notFound(`lease on machine ${id}`);
      if (lease.nonce !== nonce) {
        throw new HangarError('lease_conflict', `aborted: the nonce does not match the lease on machine ${id}, held by ${lease.owner}`);
      }
      await this.store.deleteLease(id);
    });
  }

  // --- metadata -----------------------------------------------------------------------------

  async updateMetadata(app: AppRecord, id: string, changes: Record<string, string | null>, machineVersion: string | undefined): Promise<void> {
    return this.mutex.run(id, async () => {
      const machine = await this.get(app, id);
      assertCanPerform(id, machine.state as MachineState, 'metadata');
      if (machineVersion && machineVersion !== machine.version) {
        throw new HangarError('failed_precondition', `machine_version ${machineVersion} is stale: machine ${id} is at version ${machine.version}; fetch it again and retry`);
      }
      const metadata = { ...(machine.config.metadata ?? {}) };
      for (const [key, value] of Object.entries(changes)) {
        if (value === null || value === '') delete metadata[key];
        else metadata[key] = value;
      }
      await this.store.setMachineMetadata(id, metadata, new Date().toISOString());
      this.notifier.changed(id);
    });
  }

  // --- agent changes --------------------------------------------------------------------------

  /**
   * Applies an operation's changes in order. `inHand`: the record the operation loaded under the
   * machine's mutex; what the changes read from it (version, config, image) changes only under that
   * mutex (the event stream touches runtime fields alone), so it stands in for a fresh read.
   */
  private async applyResult(result: AgentOpResult, inHand?: MachineRecord): Promise<void> {
    let known = inHand;
    for (const event of result.events) {
      const after = await this.applyAgentEvent(event, known?.id === event.machine_id ? known : undefined);
      if (after?.id === inHand?.id) known = after;
    }
  }

  /**
   * Applies one agent change to the catalog. Idempotent: replays and duplicates are ignored.
   * Answers the machine's fields this method relies on (version, config, image) as they are after
   * the change, or undefined for an unknown machine.
   */
  async applyAgentEvent(event: AgentEvent, inHand?: MachineRecord): Promise<MachineRecord | undefined> {
    const now = new Date().toISOString();
    const known = inHand ?? await this.store.getMachine(event.machine_id);
    if (!known) return undefined; // a machine whose creation was rolled back, or an app deleted since
    // Check statuses ride on the change that altered them (absent: unchanged), in the same write.
    await this.store.applyRuntime(event.machine_id, {
      state: event.state, private_ip: event.private_ip, agent_seq: event.seq, updated_at: now, ...(event.checks ? { checks: event.checks } : {}),
    });
    let after = known;
    // The digest the agent pulled: image_ref names exactly what runs (only for the version it prepared).
    if (event.image_digest && known.version === event.version && known.image_ref.digest !== event.image_digest) {
      after = { ...known, image_ref: { ...known.image_ref, digest: event.image_digest } };
      await this.store.setMachineConfig(known.id, known.config, known.version, after.image_ref, now);
    }
    if (event.event) await this.store.insertEvent(event.machine_id, event.event);
    this.notifier.changed(event.machine_id);
    return after;
  }

  private spec(app: AppRecord, orgSlug: string, machine: MachineRecord): AgentMachineSpec {
    return {
      id: machine.id,
      name: machine.name,
      app_name: app.name,
      org_slug: orgSlug,
      org_id: app.org_id,
      region: machine.region,
      version: machine.version,
      config: machine.config as MachineConfig,
    };
  }

  /**
   * Hosts as the scheduler sees them. Per-host load is not tracked yet (counting machines per create
   * would make every create cost O(machines)); with one host per region, placement is by region and
   * reachability. A cluster needs a maintained per-host count here.
   */
  private async hostSnapshot() {
    const hosts = await this.store.listHosts();
    return hosts.map((h) => ({ id: h.id, region: h.region, reachable: this.hosts.isReachable(h.id), liveMachines: 0 }));
  }
}
