/**
 * `/v1/apps` and `/v1/orgs/{org_slug}/machines`.
 * @module
 */
import { CreateAppRequest } from '../../api-types/app.js';
import { HangarError } from '../../core/errors.js';
import { parseWith } from '../../core/validation.js';
import { queryBool, Reply, type RequestContext, type Router } from '../../http/router.js';
import type { Store } from '../../store/store.js';
import type { Caller } from '../auth.js';
import { renderOrgMachine } from '../render.js';
import type { AppService } from '../services/apps.js';

export interface AppRouteDeps {
  apps: AppService;
  store: Store;
  caller(ctx: RequestContext): Caller;
}

export function registerAppRoutes(router: Router, deps: AppRouteDeps): void {
  const { apps, store } = deps;

  router.get('/v1/apps', async (ctx) => {
    const orgSlug = ctx.query.get('org_slug');
    if (!orgSlug) throw new HangarError('invalid_argument', 'query parameter org_slug is required; use "personal" for the default organization');
    const list = await apps.list(deps.caller(ctx), orgSlug);
    return { total_apps: list.length, apps: list };
  });

  router.post('/v1/apps', async (ctx) => {
    const body = parseWith(CreateAppRequest, await ctx.body());
    const app = await apps.create(deps.caller(ctx), { name: (body.name ?? body.app_name)!, org_slug: body.org_slug, network: body.network });
    return new Reply(201, { id: app.id, created_at: Date.parse(app.created_at) });
  });

  router.get('/v1/apps/{app_name}', async (ctx) => {
    const { app, org } = await apps.find(deps.caller(ctx), ctx.params.app_name!);
    return apps.render(app, org);
  });

  router.delete('/v1/apps/{app_name}', async (ctx) => {
    await apps.delete(deps.caller(ctx), ctx.params.app_name!, queryBool(ctx.query, 'force') ?? false);
    return new Reply(202, undefined);
  });

  router.get('/v1/orgs/{org_slug}/machines', async (ctx) => {
    const org = await apps.org(deps.caller(ctx), ctx.params.org_slug!);
    const states = ctx.query.get('state')?.split(',').filter(Boolean);
    let list = await store.listOrgMachines(org.id, {
      region: ctx.query.get('region') || undefined,
      states,
      includeDeleted: queryBool(ctx.query, 'include_deleted') ?? false,
    });
    const updatedAfter = ctx.query.get('updated_after');
    if (updatedAfter) {
      const after = Date.parse(updatedAfter);
      if (Number.isNaN(after)) throw new HangarError('invalid_argument', `query parameter updated_after: expected an RFC 3339 time, got ${JSON.stringify(updatedAfter)}`);
      list = list.filter((m) => Date.parse(m.updated_at) > after);
    }
    const last = list[list.length - 1];
    return {
      machines: list.map(renderOrgMachine),
      ...(last ? { last_machine_id: last.id, last_updated_at: last.updated_at } : {}),
    };
  });
}
