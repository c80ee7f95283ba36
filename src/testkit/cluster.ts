/**
 * The one sanctioned way to start real components in tests: an API server on the embedded SQLite
 * store and one agent per host (fake driver unless a test passes another), each in a temp directory
 * on port 0, plus a client whose every response is checked against Fly's OpenAPI document when it
 * is available. `close()` tears everything down.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckOptions } from '../agent/checks/check-manager.js';
import { createAgent } from '../agent/create-agent.js';
import type { Driver } from '../agent/drivers/driver.js';
import { FakeDriver } from '../agent/drivers/fake/fake-driver.js';
import { HangarClient } from '../client/client.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { bootstrap } from '../server/bootstrap.js';
import { createApiServer, type ApiServer } from '../server/create-server.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { OpenApiContract } from './openapi-contract.js';

export interface ClusterOptions {
  /** Regions of the hosts to start, one agent each; default one host in `lcl`. */
  hosts?: string[];
  /** Region of the API server (default for new machines); default the first host's. */
  region?: string;
  /** The driver of each agent; `dataDir` is the agent's data directory (kept across restartAgent). */
  newDriver?: (hostId: string, dataDir: string) => Driver;
  logger?: Logger;
  /** Check every client response against the OpenAPI document (default: when the document exists). */
  contract?: boolean;
  /** Health-check options of every agent (e.g. `resolveAddress` to loopback with the fake driver). */
  checks?: CheckOptions;
}

export interface TestCluster {
  apiUrl: string;
  adminToken: string;
  client: HangarClient;
  /** A client without the contract check, for deliberately malformed requests. */
  newClient(token?: string): HangarClient;
  /** Problems the contract check found so far (tests assert it stays empty). */
  contractProblems: string[];
  contract: OpenApiContract | undefined;
  agents: TestAgent[];
  /** Stops agent `index` (like a crashed agent process) and starts a new one on its data dir and port. */
  restartAgent(index: number, options?: { newDriver?: (hostId: string, dataDir: string) => Driver; downtimeMs?: number; whileDown?: () => Promise<void> }): Promise<void>;
  api: ApiServer;
  /** The API server's store (tests that need records the API cannot make, e.g. a second org). */
  store: SqliteStore;
  dir: string;
  /** Plain fetch against the API with the admin token. */
  fetch(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export interface TestAgent {
  url: string;
  token: string;
  dataDir: string;
  hostId: string;
  region: string;
  driver: Driver;
  close(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'hangar-test-'));
  const logger = options.logger ?? silentLogger;
  const regions = options.hosts ?? ['lcl'];
  const agents: TestAgent[] = [];
  const launchAgent = async (index: number, region: string, port: number, newDriver = options.newDriver): Promise<TestAgent> => {
    const dataDir = join(dir, `agent-${index}`);
    const hostId = `host-${index}-${region}`;
    const token = `agent-token-${index}`;
    const driver = newDriver?.(hostId, dataDir) ?? new FakeDriver({ hostId });
    const agent = createAgent({ dataDir, region, hostId, driver, token, logger, listen: { host: '127.0.0.1', port }, ...(options.checks ? { checks: options.checks } : {}) });
    const { url } = await agent.start();
    return { url, token, dataDir, hostId, region, driver, close: () => agent.close() };
  };
  for (const [index, region] of regions.entries()) agents.push(await launchAgent(index, region, 0));

  const store = new SqliteStore(join(dir, 'hangar.db'));
  await store.migrate();
  const { adminToken } = await bootstrap(store, dir);
  const api = createApiServer({
    store,
    region: options.region ?? regions[0]!,
    logger,
    agents: agents.map((a) => ({ url: a.url, token: a.token })),
    host: '127.0.0.1',
    port: 0,
  });
  const { url: apiUrl } = await api.start();
  await api.agentsReady(10_000);

  const useContract = options.contract ?? OpenApiContract.available();
  const contract = useContract ? new OpenApiContract() : undefined;
  const contractProblems: string[] = [];
  const newClient = (token = adminToken) => new HangarClient({ baseUrl: apiUrl, token });
  const client = new HangarClient({
    baseUrl: apiUrl,
    token: adminToken,
    onResponse: contract ? (info) => contractProblems.push(...contract.check(info)) : undefined,
  });

  const restartAgent: TestCluster['restartAgent'] = async (index, restartOptions = {}) => {
    const old = agents[index]!;
    await old.close();
    if (restartOptions.downtimeMs) await new Promise((r) => setTimeout(r, restartOptions.downtimeMs));
    await restartOptions.whileDown?.();
    agents[index] = await launchAgent(index, old.region, Number(new URL(old.url).port), restartOptions.newDriver);
  };

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await api.close();
    for (const agent of agents) await agent.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    apiUrl,
    adminToken,
    client,
    newClient,
    contractProblems,
    contract,
    agents,
    restartAgent,
    api,
    store,
    dir,
    fetch: (path, init = {}) => {
      const { json, ...rest } = init;
      return fetch(apiUrl + path, {
        ...rest,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(rest.headers as Record<string, string> | undefined),
        },
        body: json !== undefined ? JSON.stringify(json) : rest.body,
      });
    },
    close,
  };
}
