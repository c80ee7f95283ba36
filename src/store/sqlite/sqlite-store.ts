/**
 * The embedded store: one SQLite file (WAL) through better-sqlite3. Statements are prepared once;
 * JSON columns hold the wire-shaped parts (config, image_ref, event request) as Fly sends them.
 * @module
 */
import Database from 'better-sqlite3';
import type { ImageRef, MachineConfig, MachineEvent } from '../../api-types/machine.js';
import { HangarError } from '../../core/errors.js';
import type {
  AppRecord, HostRecord, LeaseRecord, MachineFilter, MachineRecord, OrgRecord, RuntimeUpdate, Store, TokenRecord,
} from '../store.js';
import { EVENTS_KEPT_PER_MACHINE } from '../store.js';
import { MIGRATIONS } from './migrations.js';

type Row = Record<string, unknown>;

const RECENT_EVENTS_CACHED = 20;
/** Machines whose recent events are cached (least recently read dropped first). */
const RECENT_EVENTS_MACHINES = 1_000;
/** SQLite page cache bound, KiB (better-sqlite3 builds with a 16 MB default per connection). */
export const SQLITE_CACHE_KIB = 8_000;
/** Machines whose event count is remembered (to trim without counting on every insert). */
const EVENT_COUNTS_REMEMBERED = 10_000;

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  /**
   * The newest events per machine, as read for GET (the hottest read after the machine row). This
   * process owns the file (exclusive lock), so invalidating on every write keeps the cache exact.
   */
  private readonly recentEvents = new Map<string, MachineEvent[]>();
  /** Events stored per machine, as far as known (see `insertEvent`); forgotten entries are recounted. */
  private readonly eventCounts = new Map<string, number>();

  /** `path` is a file path, or `:memory:` for tests. */
  constructor(path: string) {
    this.db = new Database(path);
    // One process owns the embedded store. Exclusive locking lets WAL skip the shared-memory index and
    // the file locks it would otherwise take for every statement (about half the cost of a GET).
    if (path !== ':memory:') this.db.pragma('locking_mode = EXCLUSIVE');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // An explicit bound: the default would let the page cache grow with the file to 16 MB.
    this.db.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
    const current = row.v ?? 0;
    const apply = this.db.transaction(() => {
      for (const [index, sql] of MIGRATIONS.entries()) {
        if (index + 1 <= current) continue;
        this.db.exec(sql);
        this.db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(index + 1);
      }
    });
    apply();
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async createOrg(slug: string, name: string): Promise<OrgRecord> {
    const created_at = new Date().toISOString();
    const info = this.stmt('INSERT INTO orgs (slug, name, created_at) VALUES (?, ?, ?)').run(slug, name, created_at);
    return { id: Number(info.lastInsertRowid), slug, name, created_at };
  }

  async getOrgBySlug(slug: string): Promise<OrgRecord | undefined> {
    return this.stmt('SELECT * FROM orgs WHERE slug = ?').get(slug) as OrgRecord | undefined;
  }

  async getOrgById(id: number): Promise<OrgRecord | undefined> {
    return this.stmt('SELECT * FROM orgs WHERE id = ?').get(id) as OrgRecord | undefined;
  }

  async listOrgs(): Promise<OrgRecord[]> {
    return this.stmt('SELECT * FROM orgs ORDER BY id').all() as OrgRecord[];
  }

  async createToken(token: Omit<TokenRecord, 'created_at'>): Promise<TokenRecord> {
    const created_at = new Date().toISOString();
    this.stmt('INSERT INTO tokens (id, hash, name, org_id, created_at) VALUES (?, ?, ?, ?, ?)').run(
      token.id, token.hash, token.name, token.org_id, created_at,
    );
    return { ...token, created_at };
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | undefined> {
    return this.stmt('SELECT * FROM tokens WHERE hash = ?').get(hash) as TokenRecord | undefined;
  }

  async createApp(app: Omit<AppRecord, 'numeric_id' | 'created_at'>): Promise<AppRecord> {
    const created_at = new Date().toISOString();
    try {
      const info = this.stmt('INSERT INTO apps (id, name, org_id, network, status, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        app.id, app.name, app.org_id, app.network, app.status, created_at,
      );
      return { ...app, numeric_id: Number(info.lastInsertRowid), created_at };
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new HangarError('name_taken', `app name "${app.name}" is already taken; choose another name`);
      }
      throw err;
    }
  }

  async getAppByName(name: string): Promise<AppRecord | undefined> {
    return this.stmt('SELECT * FROM apps WHERE name = ?').get(name) as AppRecord | undefined;
  }

  async getAppById(id: string): Promise<AppRecord | undefined> {
    return this.stmt('SELECT * FROM apps WHERE id = ?').get(id) as AppRecord | undefined;
  }

  async listApps(orgId: number): Promise<AppRecord[]> {
    return this.stmt('SELECT * FROM apps WHERE org_id = ? ORDER BY name').all(orgId) as AppRecord[];
  }

  async deleteApp(id: string): Promise<void> {
    this.recentEvents.clear();
    this.eventCounts.clear();
    // Machine rows cascade to versions, events and leases.
    this.db.transaction(() => {
      this.stmt('DELETE FROM machines WHERE app_id = ?').run(id);
      this.stmt('DELETE FROM apps WHERE id = ?').run(id);
    })();
  }

  async countLiveMachines(appIds: string[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const id of appIds) {
      const row = this.stmt("SELECT COUNT(*) AS n FROM machines WHERE app_id = ? AND state != 'destroyed'").get(id) as { n: number };
      counts.set(id, row.n);
    }
    return counts;
  }

  async upsertHost(host: Omit<HostRecord, 'last_seq' | 'updated_at'>): Promise<HostRecord> {
    const updated_at = new Date().toISOString();
    this.stmt(
      `INSERT INTO hosts (id, region, url, last_seq, updated_at) VALUES (?, ?, ?, 0, ?)
       ON CONFLICT(id) DO UPDATE SET region = excluded.region, url = excluded.url, updated_at = excluded.updated_at`,
    ).run(host.id, host.region, host.url, updated_at);
    return (await this.getHost(host.id))!;
  }

  async getHost(id: string): Promise<HostRecord | undefined> {
    return this.stmt('SELECT * FROM hosts WHERE id = ?').get(id) as HostRecord | undefined;
  }

  async listHosts(): Promise<HostRecord[]> {
    return this.stmt('SELECT * FROM hosts ORDER BY id').all() as HostRecord[];
  }

  async setHostSeq(id: string, seq: number): Promise<void> {
    this.stmt('UPDATE hosts SET last_seq = ? WHERE id = ? AND last_seq < ?').run(seq, id, seq);
  }

  async insertMachine(m: MachineRecord): Promise<void> {
    this.stmt(
      `INSERT INTO machines (id, app_id, name, region, host_id, state, version, config, private_ip, image_ref, cordoned, agent_seq, checks, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      m.id, m.app_id, m.name, m.region, m.host_id, m.state, m.version, JSON.stringify(m.config), m.private_ip,
      JSON.stringify(m.image_ref), m.cordoned ? 1 : 0, m.agent_seq, m.checks ? JSON.stringify(m.checks) : null, m.created_at, m.updated_at,
    );
  }

  async purgeMachine(id: string): Promise<void> {
    this.recentEvents.delete(id);
    this.eventCounts.delete(id);
    this.stmt('DELETE FROM machines WHERE id = ?').run(id);
  }

  async getMachine(id: string): Promise<MachineRecord | undefined> {
    const row = this.stmt('SELECT * FROM machines WHERE id = ?').get(id) as Row | undefined;
    return row && toMachine(row);
  }

  async findLiveMachineByName(appId: string, name: string): Promise<MachineRecord | undefined> {
    const row = this.stmt("SELECT * FROM machines WHERE app_id = ? AND name = ? AND state != 'destroyed' LIMIT 1").get(appId, name) as Row | undefined;
    return row && toMachine(row);
  }

  async listMachines(appId: string, filter: MachineFilter = {}): Promise<MachineRecord[]> {
    const rows = this.stmt('SELECT * FROM machines WHERE app_id = ? ORDER BY created_at, id').all(appId) as Row[];
    return rows.map(toMachine).filter((m) => matchesFilter(m, filter));
  }

  async listOrgMachines(orgId: number, filter: MachineFilter = {}): Promise<(MachineRecord & { app_name: string })[]> {
    const rows = this.stmt(
      'SELECT machines.*, apps.name AS app_name FROM machines JOIN apps ON apps.id = machines.app_id WHERE apps.org_id = ? ORDER BY machines.updated_at, machines.id',
    ).all(orgId) as Row[];
    return rows.map((r) => ({ ...toMachine(r), app_name: r.app_name as string })).filter((m) => matchesFilter(m, filter));
  }

  async setMachineConfig(id: string, config: MachineConfig, version: string, imageRef: ImageRef, updatedAt: string): Promise<void> {
    this.stmt('UPDATE machines SET config = ?, version = ?, image_ref = ?, updated_at = ? WHERE id = ?').run(
      JSON.stringify(config), version, JSON.stringify(imageRef), updatedAt, id,
    );
  }

  async setMachineMetadata(id: string, metadata: Record<string, string>, updatedAt: string): Promise<void> {
    this.db.transaction(() => {
      const row = this.stmt('SELECT config FROM machines WHERE id = ?').get(id) as { config: string } | undefined;
      if (!row) return;
      const config = JSON.parse(row.config) as MachineConfig;
      config.metadata = metadata;
      this.stmt('UPDATE machines SET config = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(config), updatedAt, id);
    })();
  }

  async setCordoned(id: string, cordoned: boolean, updatedAt: string): Promise<void> {
    this.stmt('UPDATE machines SET cordoned = ?, updated_at = ? WHERE id = ?').run(cordoned ? 1 : 0, updatedAt, id);
  }

  async applyRuntime(id: string, u: RuntimeUpdate): Promise<boolean> {
    const info = this.stmt(
      'UPDATE machines SET state = ?, private_ip = ?, agent_seq = ?, updated_at = ?, checks = COALESCE(?, checks) WHERE id = ? AND agent_seq < ?',
    ).run(u.state, u.private_ip, u.agent_seq, u.updated_at, u.checks ? JSON.stringify(u.checks) : null, id, u.agent_seq);
    return info.changes > 0;
  }

  async insertVersion(machineId: string, version: string, config: MachineConfig, createdAt: string): Promise<void> {
    this.stmt('INSERT OR IGNORE INTO machine_versions (machine_id, version, config, created_at) VALUES (?, ?, ?, ?)').run(
      machineId, version, JSON.stringify(config), createdAt,
    );
  }

  async listVersions(machineId: string): Promise<{ version: string; config: MachineConfig; created_at: string }[]> {
    const rows = this.stmt('SELECT * FROM machine_versions WHERE machine_id = ? ORDER BY version DESC').all(machineId) as Row[];
    return rows.map((r) => ({ version: r.version as string, config: JSON.parse(r.config as string), created_at: r.created_at as string }));
  }

  async insertEvent(machineId: string, e: MachineEvent): Promise<void> {
    const info = this.stmt(
      'INSERT OR IGNORE INTO machine_events (id, machine_id, type, status, source, timestamp, request) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(e.id, machineId, e.type, e.status, e.source, e.timestamp, e.request ? JSON.stringify(e.request) : null);
    this.recentEvents.delete(machineId);
    if (info.changes === 0) return;
    // Keep the newest EVENTS_KEPT_PER_MACHINE: count once per machine (index range), then track.
    let count = this.eventCounts.get(machineId);
    if (count === undefined) {
      count = (this.stmt('SELECT COUNT(*) AS n FROM machine_events WHERE machine_id = ?').get(machineId) as { n: number }).n;
      if (this.eventCounts.size >= EVENT_COUNTS_REMEMBERED) this.eventCounts.clear();
    } else count += 1;
    if (count > EVENTS_KEPT_PER_MACHINE) {
      this.stmt('DELETE FROM machine_events WHERE id IN (SELECT id FROM machine_events WHERE machine_id = ? ORDER BY id LIMIT ?)')
        .run(machineId, count - EVENTS_KEPT_PER_MACHINE);
      count = EVENTS_KEPT_PER_MACHINE;
    }
    this.eventCounts.set(machineId, count);
  }

  async listEvents(machineId: string, limit: number): Promise<MachineEvent[]> {
    if (limit <= RECENT_EVENTS_CACHED) {
      let cached = this.recentEvents.get(machineId);
      if (cached) this.recentEvents.delete(machineId); // re-inserted below: Map order = recency
      else {
        cached = this.queryEvents(machineId, RECENT_EVENTS_CACHED);
        if (this.recentEvents.size >= RECENT_EVENTS_MACHINES) this.recentEvents.delete(this.recentEvents.keys().next().value!);
      }
      this.recentEvents.set(machineId, cached);
      return cached.slice(0, limit);
    }
    return this.queryEvents(machineId, limit);
  }

  private queryEvents(machineId: string, limit: number): MachineEvent[] {
    const rows = this.stmt('SELECT * FROM machine_events WHERE machine_id = ? ORDER BY id DESC LIMIT ?').all(machineId, limit) as Row[];
    return rows.map(toEvent);
  }

  async listRecentEventsOfApp(appId: string, limit: number): Promise<Map<string, MachineEvent[]>> {
    const rows = this.stmt(
      `SELECT * FROM (
         SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.machine_id ORDER BY e.id DESC) AS rank
         FROM machine_events e JOIN machines m ON m.id = e.machine_id WHERE m.app_id = ?
       ) WHERE rank <= ? ORDER BY machine_id, id DESC`,
    ).all(appId, limit) as Row[];
    const byMachine = new Map<string, MachineEvent[]>();
    for (const r of rows) {
      const list = byMachine.get(r.machine_id as string) ?? [];
      list.push(toEvent(r));
      byMachine.set(r.machine_id as string, list);
    }
    return byMachine;
  }

  async getLease(machineId: string): Promise<LeaseRecord | undefined> {
    return this.stmt('SELECT * FROM leases WHERE machine_id = ?').get(machineId) as LeaseRecord | undefined;
  }

  async putLease(l: LeaseRecord): Promise<void> {
    this.stmt(
      `INSERT INTO leases (machine_id, nonce, owner, description, expires_at, version) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(machine_id) DO UPDATE SET nonce = excluded.nonce, owner = excluded.owner, description = excluded.description,
         expires_at = excluded.expires_at, version = excluded.version`,
    ).run(l.machine_id, l.nonce, l.owner, l.description, l.expires_at, l.version);
  }

  async deleteLease(machineId: string): Promise<void> {
    this.stmt('DELETE FROM leases WHERE machine_id = ?').run(machineId);
  }
}

function toEvent(r: Row): MachineEvent {
  const event: MachineEvent = {
    id: r.id as string,
    type: r.type as string,
    status: r.status as string,
    source: r.source as MachineEvent['source'],
    timestamp: r.timestamp as number,
  };
  if (typeof r.request === 'string') event.request = JSON.parse(r.request);
  return event;
}

function toMachine(r: Row): MachineRecord {
  const machine: MachineRecord = {
    id: r.id as string,
    app_id: r.app_id as string,
    name: r.name as string,
    region: r.region as string,
    host_id: r.host_id as string,
    state: r.state as string,
    version: r.version as string,
    config: JSON.parse(r.config as string),
    private_ip: r.private_ip as string,
    image_ref: JSON.parse(r.image_ref as string),
    cordoned: r.cordoned === 1,
    agent_seq: r.agent_seq as number,
    created_at: r.created_at as string,
    updated_at: r.updated_at as string,
  };
  if (typeof r.checks === 'string') machine.checks = JSON.parse(r.checks);
  return machine;
}

function matchesFilter(m: MachineRecord, f: MachineFilter): boolean {
  if (!f.includeDeleted && m.state === 'destroyed' && !f.states?.includes('destroyed')) return false;
  if (f.region && m.region !== f.region) return false;
  if (f.states && f.states.length > 0 && !f.states.includes(m.state)) return false;
  if (f.metadata) {
    const meta = m.config.metadata ?? {};
    for (const [k, v] of Object.entries(f.metadata)) if (meta[k] !== v) return false;
  }
  return true;
}
