/**
 * The catalog the API server keeps: organizations, tokens, apps, hosts, machines with their
 * versions, events and leases. One interface, two backends planned (SQLite for one host, PostgreSQL
 * for a cluster); every backend passes `store.conformance.ts`. The interface is async so that a
 * networked backend fits behind it unchanged.
 * @module
 */
import type { CheckStatus, MachineConfig, MachineEvent, ImageRef } from '../api-types/machine.js';

/** Events a store keeps per machine (the newest; GET …/events answers at most 1,000 too). */
export const EVENTS_KEPT_PER_MACHINE = 1_000;

export interface OrgRecord {
  id: number;
  slug: string;
  name: string;
  created_at: string;
}

export interface TokenRecord {
  id: string;
  /** sha256 of the token text, hex. The token itself is never stored. */
  hash: string;
  name: string;
  /** null: an admin token valid for every organization. */
  org_id: number | null;
  created_at: string;
}

export interface AppRecord {
  id: string;
  numeric_id: number;
  name: string;
  org_id: number;
  network: string;
  status: string;
  created_at: string;
}

export interface HostRecord {
  id: string;
  region: string;
  url: string;
  /** Highest agent event sequence number applied to the catalog. */
  last_seq: number;
  updated_at: string;
}

export interface MachineRecord {
  id: string;
  app_id: string;
  name: string;
  region: string;
  host_id: string;
  state: string;
  version: string;
  config: MachineConfig;
  private_ip: string;
  image_ref: ImageRef;
  cordoned: boolean;
  /** Sequence number of the last agent change applied; older changes are ignored. */
  agent_seq: number;
  /** Health-check statuses as the agent last reported them; absent until it reports any. */
  checks?: CheckStatus[];
  created_at: string;
  updated_at: string;
}

export interface LeaseRecord {
  machine_id: string;
  nonce: string;
  owner: string;
  description: string;
  /** Unix seconds. */
  expires_at: number;
  version: string;
}

export interface MachineFilter {
  region?: string;
  states?: string[];
  includeDeleted?: boolean;
  /** Exact-match metadata filters, all must hold. */
  metadata?: Record<string, string>;
}

export interface RuntimeUpdate {
  state: string;
  private_ip: string;
  agent_seq: number;
  updated_at: string;
  /** Replaces the machine's check statuses (in the same write); absent keeps them. */
  checks?: CheckStatus[];
}

export interface Store {
  /** Creates or upgrades the schema. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  createOrg(slug: string, name: string): Promise<OrgRecord>;
  getOrgBySlug(slug: string): Promise<OrgRecord | undefined>;
  getOrgById(id: number): Promise<OrgRecord | undefined>;
  listOrgs(): Promise<OrgRecord[]>;

  createToken(token: Omit<TokenRecord, 'created_at'>): Promise<TokenRecord>;
  findTokenByHash(hash: string): Promise<TokenRecord | undefined>;

  /** Throws `HangarError('name_taken')` when the name exists. */
  createApp(app: Omit<AppRecord, 'numeric_id' | 'created_at'>): Promise<AppRecord>;
  getAppByName(name: string): Promise<AppRecord | undefined>;
  getAppById(id: string): Promise<AppRecord | undefined>;
  listApps(orgId: number): Promise<AppRecord[]>;
  /** Deletes the app and everything recorded for its machines. */
  deleteApp(id: string): Promise<void>;
  /** Machines not destroyed, per app id. */
  countLiveMachines(appIds: string[]): Promise<Map<string, number>>;

  upsertHost(host: Omit<HostRecord, 'last_seq' | 'updated_at'>): Promise<HostRecord>;
  getHost(id: string): Promise<HostRecord | undefined>;
  listHosts(): Promise<HostRecord[]>;
  setHostSeq(id: string, seq: number): Promise<void>;

  insertMachine(machine: MachineRecord): Promise<void>;
  /** Removes a machine that never came to exist (its creation was rolled back). */
  purgeMachine(id: string): Promise<void>;
  getMachine(id: string): Promise<MachineRecord | undefined>;
  /** The machine of the app with this name that is not destroyed (names are unique among live machines). */
  findLiveMachineByName(appId: string, name: string): Promise<MachineRecord | undefined>;
  listMachines(appId: string, filter?: MachineFilter): Promise<MachineRecord[]>;
  listOrgMachines(orgId: number, filter?: MachineFilter): Promise<(MachineRecord & { app_name: string })[]>;
  /** Replaces config and version (an update) without touching runtime fields. */
  setMachineConfig(id: string, config: MachineConfig, version: string, imageRef: ImageRef, updatedAt: string): Promise<void>;
  /** Replaces config.metadata only (metadata changes make no new version). */
  setMachineMetadata(id: string, metadata: Record<string, string>, updatedAt: string): Promise<void>;
  setCordoned(id: string, cordoned: boolean, updatedAt: string): Promise<void>;
  /** Applies an agent change if it is newer than the last one applied; returns whether it did. */
  applyRuntime(id: string, update: RuntimeUpdate): Promise<boolean>;

  insertVersion(machineId: string, version: string, config: MachineConfig, createdAt: string): Promise<void>;
  listVersions(machineId: string): Promise<{ version: string; config: MachineConfig; created_at: string }[]>;

  /**
   * Inserts an event; a second insert of the same id is ignored. A machine keeps only its newest
   * `EVENTS_KEPT_PER_MACHINE` events (ordered by id); an insert beyond that drops the oldest, so the
   * event list of a long-lived machine is bounded, as Fly's is.
   */
  insertEvent(machineId: string, event: MachineEvent): Promise<void>;
  /** Newest first. */
  listEvents(machineId: string, limit: number): Promise<MachineEvent[]>;
  /** The newest `limit` events of every machine of an app, newest first per machine (one query for a list). */
  listRecentEventsOfApp(appId: string, limit: number): Promise<Map<string, MachineEvent[]>>;

  getLease(machineId: string): Promise<LeaseRecord | undefined>;
  putLease(lease: LeaseRecord): Promise<void>;
  deleteLease(machineId: string): Promise<void>;
}
