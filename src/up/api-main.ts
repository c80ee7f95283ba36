/**
 * `hangar api`: the API server alone, for hosts that run agents separately (a cluster).
 * @module
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../core/logger.js';
import { bootstrap } from '../server/bootstrap.js';
import { createApiServer } from '../server/create-server.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { DEFAULT_API_LISTEN, DEFAULT_REGION, defaultDataDir, parseListen, parseRegion, parseRoleArgs } from './role-options.js';

export async function runApiMain(args: string[]): Promise<number> {
  const flags = parseRoleArgs('api', args, {
    'data-dir': { type: 'string' },
    'api-listen': { type: 'string' },
    region: { type: 'string' },
    'agent-url': { type: 'string', multiple: true },
    'agent-token-file': { type: 'string' },
  });
  const dataDir = flags['data-dir'] ?? defaultDataDir();
  const listen = parseListen('api-listen', flags['api-listen'] ?? DEFAULT_API_LISTEN);
  const region = parseRegion(flags.region ?? DEFAULT_REGION);
  const agentUrls = flags['agent-url'] ?? [];
  const agentToken = flags['agent-token-file'] ? readFileSync(flags['agent-token-file'], 'utf8').trim() : '';
  if (agentUrls.length > 0 && !agentToken) throw new Error('--agent-token-file is required with --agent-url');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger({ component: 'api' });
  const store = new SqliteStore(join(dataDir, 'hangar.db'));
  await store.migrate();
  await bootstrap(store, dataDir);
  const server = createApiServer({ store, region, logger, agents: agentUrls.map((url) => ({ url, token: agentToken })), ...listen });
  const { url } = await server.start();
  logger.info('API server listening', { url, dataDir });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
