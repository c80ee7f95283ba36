/**
 * Pure load-balancing decisions (Fly docs `reference/load-balancing`, `fly-toml.md` §15–16):
 * least loaded first, then closest region; soft limits never move traffic across regions, hard
 * limits do; over every hard limit the request queues; when no started machine is below its soft
 * limit a stopped or suspended machine is started (nearest region first, suspended before stopped
 * because resuming is faster, a start already in flight before a new one).
 * @module
 */

export interface Candidate {
  id: string;
  region: string;
  /** started | stopped | suspended | anything else (transitional: starting, stopping, ...). */
  state: string;
  /** Checks pass, not cordoned, host reachable, not being stopped by autostop. */
  routable: boolean;
  /** May be started for traffic (not cordoned, host reachable, no recent failed start). */
  startable: boolean;
  /** A start for this machine is already in flight. */
  starting: boolean;
  load: number;
  softLimit: number;
  hardLimit: number;
}

export type Decision =
  | { kind: 'route'; id: string; alsoStart?: string }
  | { kind: 'start'; id: string }
  | { kind: 'queue'; reason: string }
  | { kind: 'unavailable'; reason: string };

export interface DecideOptions {
  /** Regions nearest first; regions not listed come after, in name order. */
  regionOrder: string[];
  autostart: boolean;
  /** Tie breaker in [0, 1); Math.random in production, fixed in tests. */
  random?: () => number;
  /** `regionRank(regionOrder)` made once by the caller (it decides per request). */
  rank?: (region: string) => number;
}

export function regionRank(regionOrder: string[]): (region: string) => number {
  const index = new Map(regionOrder.map((r, i) => [r, i]));
  return (region) => index.get(region) ?? regionOrder.length;
}

const routable = (c: Candidate) => c.routable && c.state === 'started';

/**
 * Decided once per request, so the common outcome (route) is found in two passes without
 * allocating; the rarer outcomes below may take their time.
 */
export function decide(candidates: Candidate[], options: DecideOptions): Decision {
  const rank = options.rank ?? regionRank(options.regionOrder);
  const random = options.random ?? Math.random;
  // The closest region with a machine under its hard limit keeps the traffic (soft limits never
  // move it across regions).
  let region = Infinity;
  let anyUnderSoft = false;
  for (const c of candidates) {
    if (!routable(c)) continue;
    if (c.load < c.softLimit) anyUnderSoft = true;
    if (c.load < c.hardLimit) region = Math.min(region, rank(c.region));
  }
  // Autostart only when no started machine anywhere is below its soft limit.
  const toStart = anyUnderSoft ? undefined : startCandidate(candidates, options, rank);

  if (region !== Infinity) {
    // Inside that region: the least loaded machine under its soft limit, else the least loaded one
    // between soft and hard; ties random (reservoir sampling: each tied one wins equally often).
    let pick: Candidate | undefined;
    let pickKey = Infinity;
    let ties = 0;
    for (const c of candidates) {
      if (!routable(c) || c.load >= c.hardLimit || rank(c.region) !== region) continue;
      const key = (c.load < c.softLimit ? 0 : 1e9) + c.load;
      if (key < pickKey) {
        pick = c;
        pickKey = key;
        ties = 1;
      } else if (key === pickKey && random() * ++ties < 1) pick = c;
    }
    return toStart ? { kind: 'route', id: pick!.id, alsoStart: toStart.id } : { kind: 'route', id: pick!.id };
  }
  if (toStart) return { kind: 'start', id: toStart.id };
  const routableCount = candidates.filter(routable).length;
  if (routableCount > 0) return { kind: 'queue', reason: `all ${routableCount} started machine(s) are at their hard limit` };
  const settling = candidates.filter((c) => !['started', 'stopped', 'suspended', 'destroyed', 'failed'].includes(c.state));
  if (settling.length > 0) return { kind: 'queue', reason: `waiting for ${settling.length} machine(s) that are ${[...new Set(settling.map((c) => c.state))].join('/')}` };
  if (candidates.length === 0) return { kind: 'unavailable', reason: 'the app has no machines' };
  const started = candidates.filter((c) => c.state === 'started');
  if (started.length > 0) return { kind: 'unavailable', reason: `none of its ${started.length} started machine(s) can take traffic (failing checks, cordoned or host unreachable)` };
  const stopped = candidates.filter((c) => c.state === 'stopped' || c.state === 'suspended');
  if (stopped.length > 0 && !options.autostart) return { kind: 'unavailable', reason: `no machine is started and autostart is off (${stopped.length} stopped or suspended)` };
  if (stopped.length > 0) return { kind: 'unavailable', reason: 'no machine could be started (every start failed, or the machines are cordoned or on an unreachable host)' };
  return { kind: 'unavailable', reason: `no machine can take traffic (states: ${[...new Set(candidates.map((c) => c.state))].join(', ')})` };
}

/** A start already in flight first, then nearest region, suspended before stopped. */
function startCandidate(candidates: Candidate[], options: DecideOptions, rank: (region: string) => number): Candidate | undefined {
  if (!options.autostart) return undefined;
  let best: Candidate | undefined;
  let bestKey = Infinity;
  for (const c of candidates) {
    if (!c.startable || (c.state !== 'stopped' && c.state !== 'suspended')) continue;
    const key = (c.starting ? 0 : 1e6) + rank(c.region) * 2 + (c.state === 'suspended' ? 0 : 1);
    if (key < bestKey) {
      best = c;
      bestKey = key;
    }
  }
  return best;
}
