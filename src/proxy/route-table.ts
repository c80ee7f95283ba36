/**
 * The proxy's in-memory route table, fed by the route watch stream (`api-types/watch.ts`). Pure:
 * `apply` takes one event, lookups answer from memory, so a request never calls the API.
 * @module
 */
import type { MachineConfig } from '../api-types/machine.js';
import type { RouteEvent, RouteMachine } from '../api-types/watch.js';

type Service = NonNullable<MachineConfig['services']>[number];
type ServicePort = NonNullable<Service['ports']>[number];

/** Fly's defaults when a service names no concurrency (docs `reference/configuration`). */
export const DEFAULT_SOFT_LIMIT = 20;
export const DEFAULT_HARD_LIMIT = 25;

export type ListenerKind = 'http' | 'https';

/** One service of one machine that matches a listener: the port to dial and its limits. */
export interface ServiceMatch {
  service: Service;
  port: ServicePort | undefined;
  internalPort: number;
  concurrencyType: 'connections' | 'requests';
  softLimit: number;
  hardLimit: number;
  forceHttps: boolean;
}

/** A raw TCP (or TLS-terminated TCP) public port: which app owns it and whether TLS ends here. */
export interface TcpPortRoute {
  port: number;
  app: string;
  tls: boolean;
}

export class RouteTable {
  private readonly machines = new Map<string, RouteMachine>();
  private readonly byApp = new Map<string, Set<string>>();
  /** Apps that had machines at some point: "no machines" (503) rather than "unknown" (404). */
  private readonly known = new Set<string>();
  /** Bumped on every change; listeners compare to know whether to recompute derived views. */
  version = 0;
  /** `app(name)` answers, made once per change of that app's machines (the proxy asks once per request). */
  private readonly lists = new Map<string, readonly RouteMachine[]>();

  /** Applies one watch event; answers the apps whose machines changed (for waking waiters). */
  apply(event: RouteEvent): string[] {
    const touched = this.applyEvent(event);
    // Only the touched apps' lists change (a snapshot touches every app, old and new).
    for (const app of touched) this.lists.delete(app);
    return touched;
  }

  private applyEvent(event: RouteEvent): string[] {
    switch (event.type) {
      case 'snapshot': {
        const touched = new Set<string>(this.byApp.keys());
        this.machines.clear();
        this.byApp.clear();
        for (const m of event.machines) {
          this.put(m);
          touched.add(m.app_name);
        }
        this.version++;
        return [...touched];
      }
      case 'upsert': {
        const old = this.machines.get(event.machine.id);
        if (old && old.app_name !== event.machine.app_name) this.drop(old.id);
        this.put(event.machine);
        this.version++;
        return old && old.app_name !== event.machine.app_name ? [event.machine.app_name, old.app_name] : [event.machine.app_name];
      }
      case 'remove': {
        const app = this.machines.get(event.machine_id)?.app_name;
        this.drop(event.machine_id);
        this.version++;
        return app && app !== event.app_name ? [event.app_name, app] : [event.app_name];
      }
      default:
        return [];
    }
  }

  get(id: string): RouteMachine | undefined {
    return this.machines.get(id);
  }

  /** Every machine of `app` that is not destroyed, in no particular order. */
  app(app: string): readonly RouteMachine[] {
    let list = this.lists.get(app);
    if (list) return list;
    const ids = this.byApp.get(app);
    if (!ids) return [];
    const out: RouteMachine[] = [];
    for (const id of ids) out.push(this.machines.get(id)!);
    this.lists.set(app, (list = out));
    return list;
  }

  apps(): string[] {
    return [...this.byApp.keys()];
  }

  hasApp(app: string): boolean {
    return (this.byApp.get(app)?.size ?? 0) > 0;
  }

  knows(app: string): boolean {
    return this.known.has(app);
  }

  private put(m: RouteMachine): void {
    this.known.add(m.app_name);
    this.machines.set(m.id, m);
    let ids = this.byApp.get(m.app_name);
    if (!ids) this.byApp.set(m.app_name, (ids = new Set()));
    ids.add(m.id);
  }

  private drop(id: string): void {
    const m = this.machines.get(id);
    if (!m) return;
    this.machines.delete(id);
    const ids = this.byApp.get(m.app_name);
    ids?.delete(id);
    if (ids && ids.size === 0) this.byApp.delete(m.app_name);
  }

  /** TCP listeners the proxy should hold: public ports of services without the http handler. */
  tcpPorts(): TcpPortRoute[] {
    const out = new Map<number, TcpPortRoute>();
    const apps = [...this.byApp.keys()].sort();
    for (const app of apps) {
      for (const m of this.app(app)) {
        for (const s of m.services) {
          if (s.protocol !== 'tcp') continue;
          for (const p of s.ports ?? []) {
            const handlers = p.handlers ?? [];
            if (handlers.includes('http') || p.port === undefined) continue;
            // First app (by name) to claim a port keeps it: one host has one address per port.
            if (!out.has(p.port)) out.set(p.port, { port: p.port, app, tls: handlers.includes('tls') });
          }
        }
      }
    }
    return [...out.values()].sort((a, b) => a.port - b.port);
  }
}

function limits(s: Service): Pick<ServiceMatch, 'concurrencyType' | 'softLimit' | 'hardLimit'> {
  const c = s.concurrency;
  const hard = c?.hard_limit ?? Math.max(DEFAULT_HARD_LIMIT, c?.soft_limit ?? 0);
  const soft = Math.min(c?.soft_limit ?? Math.min(DEFAULT_SOFT_LIMIT, hard), hard);
  return { concurrencyType: c?.type ?? 'connections', softLimit: soft, hardLimit: hard };
}

/**
 * The service of `m` that serves HTTP arriving on `listener`: for plain HTTP a port with the http
 * handler and without tls (Fly's port 80), for HTTPS one with tls+http (port 443); either falls back
 * to any port with the http handler.
 */
export function httpService(m: RouteMachine, listener: ListenerKind): ServiceMatch | undefined {
  let fallback: ServiceMatch | undefined;
  for (const s of m.services) {
    if (s.protocol !== 'tcp') continue;
    for (const p of s.ports ?? []) {
      const h = p.handlers ?? [];
      if (!h.includes('http')) continue;
      const match: ServiceMatch = { service: s, port: p, internalPort: s.internal_port, forceHttps: p.force_https === true, ...limits(s) };
      if (h.includes('tls') === (listener === 'https')) return match;
      fallback ??= match;
    }
  }
  return fallback && { ...fallback, forceHttps: listener === 'http' && fallback.forceHttps };
}

/** The service of `m` that owns public TCP port `port`. */
export function tcpService(m: RouteMachine, port: number): ServiceMatch | undefined {
  for (const s of m.services) {
    if (s.protocol !== 'tcp') continue;
    for (const p of s.ports ?? []) {
      const inRange = p.port === port || (p.start_port !== undefined && p.end_port !== undefined && port >= p.start_port && port <= p.end_port);
      if (inRange && !(p.handlers ?? []).includes('http')) return { service: s, port: p, internalPort: s.internal_port, forceHttps: false, ...limits(s) };
    }
  }
  return undefined;
}

/** `web.localhost:8080` with domain `localhost` → `web`; undefined when the host is not under the domain. */
export function appFromHost(host: string | undefined, domain: string): string | undefined {
  if (!host) return undefined;
  let name = host.toLowerCase();
  if (name.startsWith('[')) return undefined;
  const colon = name.lastIndexOf(':');
  if (colon >= 0) name = name.slice(0, colon);
  if (name.endsWith('.')) name = name.slice(0, -1);
  const suffix = `.${domain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const app = name.slice(0, -suffix.length);
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(app) ? app : undefined;
}

/**
 * The routing rule of `api-types/watch.ts`: every service check and every top-level `readiness`
 * check must be `passing` (informational top-level checks never matter); no checks = healthy.
 * With `allowWarning`, checks that have not run yet (`warning`) do not block (used for a machine
 * this proxy just started and saw accept connections).
 */
export function checksPass(m: RouteMachine, allowWarning = false): boolean {
  for (const c of m.checks) {
    const top = m.check_configs[c.name];
    if (top && top.kind !== 'readiness') continue;
    if (c.status === 'passing' || (allowWarning && c.status === 'warning')) continue;
    return false;
  }
  return true;
}

/** Most restrictive autostop over a machine's services: off < stop < suspend (Fly's rule). */
export function machineAutostop(m: RouteMachine): { autostop: 'off' | 'stop' | 'suspend'; autostart: boolean; minRunning: number } {
  const rank = { off: 0, stop: 1, suspend: 2 } as const;
  let autostop: 'off' | 'stop' | 'suspend' | undefined;
  let autostart = true;
  let minRunning = 0;
  for (const s of m.services) {
    const a = (s.autostop ?? 'off') as 'off' | 'stop' | 'suspend';
    if (autostop === undefined || rank[a] < rank[autostop]) autostop = a;
    if (s.autostart === false) autostart = false;
    minRunning = Math.max(minRunning, s.min_machines_running ?? 0);
  }
  return { autostop: autostop ?? 'off', autostart, minRunning };
}
