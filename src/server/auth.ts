/**
 * Bearer-token authentication. Fly clients send `Authorization: Bearer <t>` or `FlyV1 <t>`, and
 * the value may hold several comma-separated tokens; any one that Hangar knows authenticates.
 * Tokens are stored as sha256 hashes; known tokens are cached so a GET costs no extra query.
 * @module
 */
import { createHash } from 'node:crypto';
import { HangarError } from '../core/errors.js';
import type { Store } from '../store/store.js';

export interface Caller {
  tokenId: string;
  /** Shown as the lease owner. */
  name: string;
  /** null: admin, may act on every organization. */
  orgId: number | null;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class Authenticator {
  private readonly cache = new Map<string, Caller>();

  constructor(private readonly store: Store) {}

  async authenticate(header: string | undefined): Promise<Caller> {
    if (!header) throw new HangarError('unauthenticated', 'missing Authorization header; send "Authorization: Bearer <token>" (`hangar auth token` prints one)');
    const match = /^(Bearer|FlyV1)\s+(.+)$/i.exec(header.trim());
    if (!match) throw new HangarError('unauthenticated', 'Authorization header must be "Bearer <token>" or "FlyV1 <token>"');
    for (const candidate of match[2]!.split(',').map((t) => t.trim()).filter(Boolean)) {
      const cached = this.cache.get(candidate);
      if (cached) return cached;
      const record = await this.store.findTokenByHash(hashToken(candidate));
      if (record) {
        const caller = { tokenId: record.id, name: record.name, orgId: record.org_id };
        if (this.cache.size > 1000) this.cache.clear();
        this.cache.set(candidate, caller);
        return caller;
      }
    }
    throw new HangarError('unauthenticated', 'token validation error: the token is not known to this Hangar; check HANGAR_API_TOKEN or run `hangar auth token` on the server host');
  }
}

export function assertOrgAccess(caller: Caller, orgId: number, what: string): void {
  if (caller.orgId !== null && caller.orgId !== orgId) {
    throw new HangarError('permission_denied', `this token may not access ${what}; use a token of its organization`);
  }
}
