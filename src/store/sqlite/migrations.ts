/**
 * Schema migrations, applied in order; never edit one that has shipped, append a new one.
 * @module
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE orgs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    org_id INTEGER REFERENCES orgs(id),
    created_at TEXT NOT NULL
  );
  CREATE TABLE apps (
    numeric_id INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    network TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    region TEXT NOT NULL,
    url TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE machines (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id),
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    host_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    private_ip TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    cordoned INTEGER NOT NULL DEFAULT 0,
    agent_seq INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX machines_app ON machines(app_id);
  CREATE TABLE machine_versions (
    machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (machine_id, version)
  );
  CREATE TABLE machine_events (
    id TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    request TEXT
  );
  CREATE INDEX machine_events_machine ON machine_events(machine_id, id);
  CREATE TABLE leases (
    machine_id TEXT PRIMARY KEY REFERENCES machines(id) ON DELETE CASCADE,
    nonce TEXT NOT NULL,
    owner TEXT NOT NULL,
    description TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    version TEXT NOT NULL
  );
  `,
  // Machine names are looked up on every create.
  `CREATE INDEX machines_app_name ON machines(app_id, name);`,
  // Health-check statuses the agents report (JSON array of CheckStatus; NULL until the first report).
  `ALTER TABLE machines ADD COLUMN checks TEXT;`,
];
