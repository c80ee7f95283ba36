/**
 * The agent's own durable state, in `<dataDir>/agent.sqlite` (WAL): the machine table, the op log
 * and the numbered change log that feeds `/agent/v1/events`.
 *
 * Why one `change()` call does everything: a state change, its event row (with the next `seq`) and
 * the op-log entry that explains it are written in ONE transaction. So after a crash the database
 * never shows a transient state without the pending op that caused it, and the event stream never
 * misses a change the machine table shows. The op is written *before* the driver is asked to act;
 * recovery (`../machines/recovery.ts`) reads the ops still pending and finishes or rolls them back.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AgentEvent, AgentMachineSpec } from '../../api-types/agent.js';
import type { CheckStatus, MachineEvent } from '../../api-types/machine.js';
import type { MachineState } from '../../core/machine-states.js';
import { initialStatuses } from '../checks/check-specs.js';

/** Change-log rows kept for replay; older ones are trimmed. */
export const EVENTS_KEPT = 10_000;
/** Finished op-log rows kept for debugging; older ones are trimmed. */
export const OPS_KEPT = 10_000;
/**
 * SQLite page cache bound, KiB (better-sqlite3 builds with a 16 MB default per connection). The
 * agent writes at the end of its logs and reads back only recent rows, so a small cache serves it;
 * a larger one only filled as the file grew to its ~3 MB steady size (4 MB: agent RSS +2–3 MB over
 * the first 6,000 start/stop cycles; 1 MB: full by cycle ~300, start latency unchanged).
 */
export const SQLITE_CACHE_KIB = 1_000;

export interface MachineRow {
  id: string;
  app_name: string;
  state: MachineState;
  version: string;
  private_ip: string;
  spec: AgentMachineSpec;
  /** Restarts the agent made since the last user action (restart policy bookkeeping). */
  restart_count: number;
  /**
   * Health-check statuses of the current run (`../checks/`): set to every declared check at
   * `warning` when the machine becomes `started`, cleared when it leaves `started`, and updated by
   * `setChecks` when a status changes in between.
   */
  checks: CheckStatus[];
  seq: number;
  created_at: number;
  updated_at: number;
}

/**
 * Op kinds. `restart_after_exit` is a restart the restart policy scheduled (it waits out a backoff
 * while the machine is `stopped`); the rest are the user operations of the same names.
 */
export type OpKind = 'create' | 'start' | 'stop' | 'restart' | 'suspend' | 'update' | 'destroy' | 'restart_after_exit';

export interface OpRow {
  id: number;
  machine_id: string;
  kind: OpKind;
  target_version: string;
  args: Record<string, unknown>;
  prev_state: string;
  started_at: number;
  finished_at: number | null;
  outcome: string | null;
}

export interface ChangeInput {
  id: string;
  state: MachineState;
  /** Fields to replace; a missing field keeps its value. A new machine needs `spec`. */
  spec?: AgentMachineSpec;
  private_ip?: string;
  restart_count?: number;
  /** The user-visible event for this change, if any. */
  event?: MachineEvent;
  /** Records an op as pending in the same transaction (before acting). */
  beginOp?: { kind: OpKind; targetVersion: string; args?: Record<string, unknown> };
  /** Marks an op done in the same transaction (after acting). */
  finishOp?: { id: number; outcome: string };
}

export interface ChangeResult {
  row: MachineRow;
  event: AgentEvent;
  opId?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS machines (
  id TEXT PRIMARY KEY,
  app_name TEXT NOT NULL,
  state TEXT NOT NULL,
  version TEXT NOT NULL,
  private_ip TEXT NOT NULL,
  spec TEXT NOT NULL,
  restart_count INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ops (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  machine_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  target_version TEXT NOT NULL,
  args TEXT NOT NULL,
  prev_state TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  outcome TEXT
);
CREATE INDEX IF NOT EXISTS ops_pending ON ops (id) WHERE finished_at IS NULL;
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  machine_id TEXT NOT NULL,
  state TEXT NOT NULL,
  version TEXT NOT NULL,
  private_ip TEXT NOT NULL,
  event TEXT,
  created_at INTEGER NOT NULL
);
`;

interface RawMachine extends Omit<MachineRow, 'spec' | 'state' | 'checks'> {
  spec: string;
  state: string;
  checks: string | null;
}
interface RawOp extends Omit<OpRow, 'args' | 'kind'> {
  args: string;
  kind: string;
}
interface RawEvent {
  seq: number;
  machine_id: string;
  state: string;
  version: string;
  private_ip: string;
  event: string | null;
  checks: string | null;
}

export class AgentDb {
  readonly path: string;
  private readonly db: Database.Database;
  private seq: number;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly changeTx: (input: ChangeInput) => ChangeResult;
  private readonly checksTx: (id: string, version: string, checks: CheckStatus[]) => ChangeResult | undefined;

  private readonly eventsKept: number;

  /** `eventsKept` exists for tests; production keeps `EVENTS_KEPT`. */
  constructor(dataDir: string, options: { eventsKept?: number } = {}) {
    this.eventsKept = options.eventsKept ?? EVENTS_KEPT;
    mkdirSync(dataDir, { recursive: true });
    this.path = join(dataDir, 'agent.sqlite');
    this.db = new Database(this.path);
    this.db.pragma('journal_mode = WAL');
    // FULL: an op marked pending must survive a power cut, or recovery cannot see it.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    // An explicit bound: the default would let the page cache grow with the file to 16 MB.
    this.db.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
    this.db.exec(SCHEMA);
    this.addColumnIfMissing('machines', 'checks', 'TEXT');
    this.addColumnIfMissing('events', 'checks', 'TEXT');
    const maxEvent = (this.stmt('SELECT MAX(seq) AS s FROM events').get() as { s: number | null }).s ?? 0;
    this.seq = Math.max(maxEvent, Number(this.getMeta('last_seq') ?? 0));
    this.changeTx = this.db.transaction((input: ChangeInput) => this.applyChange(input));
    this.checksTx = this.db.transaction((id: string, version: string, checks: CheckStatus[]) => this.applyChecks(id, version, checks));
  }

  getMeta(key: string): string | undefined {
    return (this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Highest sequence number written so far (0 before the first change). */
  lastSeq(): number {
    return this.seq;
  }

  /** Events with seq ≤ this were trimmed and can no longer be replayed. */
  trimmedThrough(): number {
    return Number(this.getMeta('trimmed_through') ?? 0);
  }

  getMachine(id: string): MachineRow | undefined {
    const raw = this.stmt('SELECT * FROM machines WHERE id = ?').get(id) as RawMachine | undefined;
    return raw && toMachine(raw);
  }

  listMachines(options: { includeDestroyed?: boolean } = {}): MachineRow[] {
    const sql = options.includeDestroyed ? 'SELECT * FROM machines ORDER BY id' : "SELECT * FROM machines WHERE state != 'destroyed' ORDER BY id";
    return (this.stmt(sql).all() as RawMachine[]).map(toMachine);
  }

  pendingOps(): OpRow[] {
    return (this.stmt('SELECT * FROM ops WHERE finished_at IS NULL ORDER BY id').all() as RawOp[]).map(toOp);
  }

  getOp(id: number): OpRow | undefined {
    const raw = this.stmt('SELECT * FROM ops WHERE id = ?').get(id) as RawOp | undefined;
    return raw && toOp(raw);
  }

  /** Records an op without a state change (used when the state itself does not move). */
  beginOp(machineId: string, prevState: string, op: NonNullable<ChangeInput['beginOp']>): number {
    const info = this.stmt('INSERT INTO ops (machine_id, kind, target_version, args, prev_state, started_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(machineId, op.kind, op.targetVersion, JSON.stringify(op.args ?? {}), prevState, Date.now());
    return Number(info.lastInsertRowid);
  }

  finishOp(id: number, outcome: string): void {
    this.stmt('UPDATE ops SET finished_at = ?, outcome = ? WHERE id = ? AND finished_at IS NULL').run(Date.now(), outcome, id);
  }

  /** Applies one state change atomically; see the module comment. */
  change(input: ChangeInput): ChangeResult {
    return this.changeTx(input);
  }

  /**
   * Records new health-check statuses of machine `id` as one numbered change (the event carries
   * `checks`), if the machine is still `started` at `version`; answers the change, or undefined when
   * the run the statuses belong to is over.
   */
  setChecks(id: string, version: string, checks: CheckStatus[]): ChangeResult | undefined {
    return this.checksTx(id, version, checks);
  }

  /** Changes after `after`, oldest first, at most `limit`. */
  eventsAfter(after: number, limit = 1000): AgentEvent[] {
    const rows = this.stmt('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?').all(after, limit) as RawEvent[];
    return rows.map(toAgentEvent);
  }

  /** User-visible events of one machine, newest first. */
  machineEvents(machineId: string, limit = 20): MachineEvent[] {
    const rows = this.stmt('SELECT event FROM events WHERE machine_id = ? AND event IS NOT NULL ORDER BY seq DESC LIMIT ?')
      .all(machineId, limit) as { event: string }[];
    return rows.map((r) => JSON.parse(r.event) as MachineEvent);
  }

  /** Drops tombstones of machines destroyed before `before` (ms epoch). */
  pruneDestroyed(before: number): number {
    return this.stmt("DELETE FROM machines WHERE state = 'destroyed' AND updated_at < ?").run(before).changes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private addColumnIfMissing(table: string, column: string, type: string): void {
    const columns = this.db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (!columns.some((c) => c.name === column)) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }

  /** Prepared statements are cached: every machine operation runs several of them. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private applyChange(input: ChangeInput): ChangeResult {
    const now = Date.now();
    const existing = this.getMachine(input.id);
    const spec = input.spec ?? existing?.spec;
    if (!spec) throw new Error(`agent db: machine ${input.id} has no spec`);
    const seq = ++this.seq;
    // Checks belong to one run: fresh (all `warning`) on becoming started, none outside started.
    const stateChanged = existing?.state !== input.state;
    const checks = !stateChanged && existing ? existing.checks : input.state === 'started' ? initialStatuses(spec.config, new Date(now)) : [];
    const checksChanged = JSON.stringify(checks) !== JSON.stringify(existing?.checks ?? []);
    const row: MachineRow = {
      id: input.id,
      app_name: spec.app_name,
      state: input.state,
      version: spec.version,
      private_ip: input.private_ip ?? existing?.private_ip ?? '',
      spec,
      restart_count: input.restart_count ?? existing?.restart_count ?? 0,
      checks,
      seq,
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    this.stmt(
      `INSERT INTO machines (id, app_name, state, version, private_ip, spec, restart_count, checks, seq, created_at, updated_at)
       VALUES (@id, @app_name, @state, @version, @private_ip, @spec, @restart_count, @checks, @seq, @created_at, @updated_at)
       ON CONFLICT (id) DO UPDATE SET app_name = excluded.app_name, state = excluded.state, version = excluded.version,
         private_ip = excluded.private_ip, spec = excluded.spec, restart_count = excluded.restart_count,
         checks = excluded.checks, seq = excluded.seq, updated_at = excluded.updated_at`,
    ).run({ ...row, spec: JSON.stringify(spec), checks: JSON.stringify(checks) });
    this.stmt('INSERT INTO events (seq, machine_id, state, version, private_ip, event, checks, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(seq, row.id, row.state, row.version, row.private_ip, input.event ? JSON.stringify(input.event) : null, checksChanged ? JSON.stringify(checks) : null, now);
    this.setMeta('last_seq', String(seq));
    let opId: number | undefined;
    if (input.beginOp) opId = this.beginOp(row.id, existing?.state ?? 'absent', input.beginOp);
    if (input.finishOp) this.finishOp(input.finishOp.id, input.finishOp.outcome);
    this.maybeTrim(seq);
    const event: AgentEvent = { seq, machine_id: row.id, state: row.state, version: row.version, private_ip: row.private_ip };
    if (input.event) event.event = input.event;
    if (checksChanged) event.checks = checks;
    return opId === undefined ? { row, event } : { row, event, opId };
  }

  private applyChecks(id: string, version: string, checks: CheckStatus[]): ChangeResult | undefined {
    const existing = this.getMachine(id);
    if (!existing || existing.state !== 'started' || existing.version !== version) return undefined;
    const now = Date.now();
    const seq = ++this.seq;
    const json = JSON.stringify(checks);
    this.stmt('UPDATE machines SET checks = ?, seq = ?, updated_at = ? WHERE id = ?').run(json, seq, now, id);
    this.stmt('INSERT INTO events (seq, machine_id, state, version, private_ip, event, checks, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)')
      .run(seq, id, existing.state, existing.version, existing.private_ip, json, now);
    this.setMeta('last_seq', String(seq));
    this.maybeTrim(seq);
    const row: MachineRow = { ...existing, checks, seq, updated_at: now };
    const event: AgentEvent = { seq, machine_id: id, state: existing.state, version: existing.version, private_ip: existing.private_ip, checks };
    return { row, event };
  }

  /** Trims in batches so the common path stays one insert. */
  private maybeTrim(seq: number): void {
    if (seq % Math.max(1, Math.min(500, Math.floor(this.eventsKept / 2))) === 0) this.trim(seq);
  }

  private trim(seq: number): void {
    const cutoff = seq - this.eventsKept;
    if (cutoff > 0) {
      this.stmt('DELETE FROM events WHERE seq <= ?').run(cutoff);
      this.setMeta('trimmed_through', String(Math.max(cutoff, this.trimmedThrough())));
    }
    const lastOp = (this.stmt('SELECT MAX(id) AS id FROM ops').get() as { id: number | null }).id ?? 0;
    this.stmt('DELETE FROM ops WHERE finished_at IS NOT NULL AND id <= ?').run(lastOp - OPS_KEPT);
  }
}

function toMachine(raw: RawMachine): MachineRow {
  return { ...raw, state: raw.state as MachineState, spec: JSON.parse(raw.spec) as AgentMachineSpec, checks: raw.checks ? (JSON.parse(raw.checks) as CheckStatus[]) : [] };
}

function toOp(raw: RawOp): OpRow {
  return { ...raw, kind: raw.kind as OpKind, args: JSON.parse(raw.args) as Record<string, unknown> };
}

function toAgentEvent(raw: RawEvent): AgentEvent {
  const event: AgentEvent = { seq: raw.seq, machine_id: raw.machine_id, state: raw.state, version: raw.version, private_ip: raw.private_ip };
  if (raw.event) event.event = JSON.parse(raw.event) as MachineEvent;
  if (raw.checks) event.checks = JSON.parse(raw.checks) as CheckStatus[];
  return event;
}
