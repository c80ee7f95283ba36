/**
 * First start of a data directory: the `personal` organization and an admin token. The token text
 * is written to `<data-dir>/admin-token` (mode 0600) and only its hash goes into the store.
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newToken } from '../core/ids.js';
import type { Store } from '../store/store.js';
import { hashToken } from './auth.js';
import { DEFAULT_ORG } from './services/apps.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

export async function bootstrap(store: Store, dataDir: string): Promise<{ adminToken: string; created: boolean }> {
  if (!(await store.getOrgBySlug(DEFAULT_ORG))) await store.createOrg(DEFAULT_ORG, 'Personal');
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (await store.findTokenByHash(hashToken(token))) return { adminToken: token, created: false };
  }
  const token = newToken('hgr');
  await store.createToken({ id: `tok_${hashToken(token).slice(0, 12)}`, hash: hashToken(token), name: 'admin@hangar', org_id: null });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { adminToken: token, created: true };
}
