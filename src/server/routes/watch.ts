/**
 * `GET /v1/watch/routes`: the NDJSON stream of route changes proxies follow (contract in
 * `api-types/watch.ts`). A snapshot first, then an upsert or remove per machine change, read back
 * from the catalog so every line is the machine's current state (changes that come in bursts are
 * coalesced per machine).
 * @module
 */
import type { RouteEvent, RouteMachine } from '../../api-types/watch.js';
import type { RequestContext, Router } from '../../http/router.js';
import type { MachineRecord, OrgRecord, Store } from '../../store/store.js';
import type { Caller } from '../auth.js';
import type { HostRegistry } from '../host-registry.js';
import type { MachineNotifier } from '../machine-notifier.js';

const HEARTBEAT_MS = 15_000;

export interface WatchRouteDeps {
  store: Store;
  hosts: HostRegistry;
  notifier: MachineNotifier;
  caller(ctx: RequestContext): Caller;
}

export function registerWatchRoutes(router: Router, deps: WatchRouteDeps): void {
  router.get('/v1/watch/routes', async (ctx) => {
    const caller = deps.caller(ctx);
    const orgs = (await deps.store.listOrgs()).filter((o) => caller.orgId === null || caller.orgId === o.id);
    const orgById = new Map(orgs.map((o) => [o.id, o]));
    const appNames = new Map<string, { name: string; org: OrgRecord }>();
    const lookupApp = async (appId: string) => {
      let app = appNames.get(appId);
      if (!app) {
        const record = await deps.store.getAppById(appId);
        const org = record && orgById.get(record.org_id);
        if (!record || !org) return undefined;
        app = { name: record.name, org };
        appNames.set(appId, app);
      }
      return app;
    };
    const toRoute = async (m: MachineRecord): Promise<RouteMachine | undefined> => {
      const app = await lookupApp(m.app_id);
      if (!app) return undefined;
      return {
        id: m.id, app_name: app.name, org_slug: app.org.slug, region: m.region, state: m.state, private_ip: m.private_ip,
        version: m.version, cordoned: m.cordoned, services: m.config.services ?? [], check_configs: m.config.checks ?? {},
        checks: m.checks ?? [], metadata: m.config.metadata ?? {}, host_status: deps.hosts.isReachable(m.host_id) ? 'ok' : 'unreachable',
        updated_at: m.updated_at,
      };
    };

    // Subscribe before reading the snapshot so no change falls between the two.
    const pending = new Set<string>();
    let wake: (() => void) | undefined;
    const unsubscribe = deps.notifier.watchAll((id) => {
      pending.add(id);
      wake?.();
    });
    const closed = new Promise<void>((resolve) => ctx.res.once('close', () => resolve()));
    let seq = 0;
    const send = (event: RouteEvent) => ctx.res.write(`${JSON.stringify(event)}\n`);
    try {
      const known = new Map<string, string>(); // machine id → app name, for removes
      const machines: RouteMachine[] = [];
      for (const org of orgs) {
        for (const m of await deps.store.listOrgMachines(org.id)) {
          const route = await toRoute(m);
          if (route) {
            machines.push(route);
            known.set(route.id, route.app_name);
          }
        }
      }
      ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'fly-request-id': ctx.requestId });
      send({ type: 'snapshot', seq: ++seq, machines });
      const heartbeat = setInterval(() => send({ type: 'heartbeat', seq: ++seq }), HEARTBEAT_MS);
      try {
        for (;;) {
          if (pending.size === 0) {
            const woke = new Promise<void>((resolve) => (wake = resolve));
            if ((await Promise.race([woke.then(() => 'woke'), closed.then(() => 'closed')])) === 'closed') return;
            wake = undefined;
          }
          const ids = [...pending];
          pending.clear();
          for (const id of ids) {
            const m = await deps.store.getMachine(id);
            const route = m && m.state !== 'destroyed' ? await toRoute(m) : undefined;
            if (route) {
              known.set(id, route.app_name);
              send({ type: 'upsert', seq: ++seq, machine: route });
            } else if (known.has(id)) {
              send({ type: 'remove', seq: ++seq, machine_id: id, app_name: known.get(id)! });
              known.delete(id);
            }
          }
        }
      } finally {
        clearInterval(heartbeat);
      }
    } finally {
      unsubscribe();
      if (!ctx.res.writableEnded) ctx.res.end();
    }
  });
}
