/**
 * `fly-replay` (Fly docs `reference/dynamic-request-routing`): a response header asking the proxy to
 * replay the request elsewhere, e.g. `region=ams;app=other;instance=3d8d…;state=x;elsewhere=true`.
 * Pure parsing and the `fly-replay-src` header the replayed request carries.
 * @module
 */

export interface ReplayTarget {
  app?: string;
  region?: string;
  instance?: string;
  elsewhere: boolean;
  state?: string;
}

/** Undefined when the header names nothing to do. */
export function parseFlyReplay(value: string): ReplayTarget | undefined {
  const t: ReplayTarget = { elsewhere: false };
  for (const part of value.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim().toLowerCase();
    const v = part.slice(eq + 1).trim();
    if (!v) continue;
    if (k === 'app') t.app = v;
    else if (k === 'region') t.region = v.split(',')[0]!.trim();
    else if (k === 'instance') t.instance = v;
    else if (k === 'elsewhere') t.elsewhere = v === 'true';
    else if (k === 'state') t.state = v;
  }
  return t.app || t.region || t.instance || t.elsewhere ? t : undefined;
}

export function replaySource(from: { instance: string; region: string; state?: string }, nowMicros: number): string {
  return `instance=${from.instance};region=${from.region};t=${nowMicros}${from.state ? `;state=${from.state}` : ''}`;
}
