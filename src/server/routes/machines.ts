/**
 * `/v1/apps/{app_name}/machines/...`: route → parse → service → wire response. Lease-protected
 * mutations read the `fly-machine-lease-nonce` header; bodies and queries are parsed with the
 * api-types schemas, so handlers only see typed values.
 * @module
 */
import {
  type MachineEvent,
  CreateLeaseRequest, CreateMachineRequest, ExecRequest, SignalRequest, StopRequest, UpdateMachineRequest,
  UpdateMetadataRequest, UpsertMetadataKeyRequest,
} from '../../api-types/machine.js';
import { HangarError, notFound } from '../../core/errors.js';
import { LISTABLE_STATES } from '../../core/machine-states.js';
import { parseWith } from '../../core/validation.js';
import { queryBool, queryInt, Reply, type RequestContext, type Router } from '../../http/router.js';
import type { Caller } from '../auth.js';
import { renderLease, renderMachine } from '../render.js';
import type { AppService } from '../services/apps.js';
import type { MachineService } from '../services/machines.js';
import { shellWords } from '../../core/shell-words.js';
import type { Store } from '../../store/store.js';
import type { HostRegistry } from '../host-registry.js';

export interface MachineRouteDeps {
  apps: AppService;
  machines: MachineService;
  store: Store;
  hosts: HostRegistry;
  caller(ctx: RequestContext): Caller;
}

const BASE = '/v1/apps/{app_name}/machines';
const ONE = `${BASE}/{machine_id}`;
const EVENTS_IN_MACHINE = 10;
const DEFAULT_LEASE_TTL_S = 30;

export function registerMachineRoutes(router: Router, deps: MachineRouteDeps): void {
  const { apps, machines, store, hosts } = deps;
  const appOf = async (ctx: RequestContext) => apps.find(deps.caller(ctx), ctx.params.app_name!);
  const nonceOf = (ctx: RequestContext) => header(ctx, 'fly-machine-lease-nonce');
  type Rec = Awaited<ReturnType<MachineService['get']>>;
  const render = async (m: Rec, opts: { summary?: boolean; includeLease?: boolean; nonce?: string; events?: Map<string, MachineEvent[]> } = {}) =>
    renderMachine(m, {
      summary: opts.summary,
      events: opts.summary ? undefined : opts.events ? (opts.events.get(m.id) ?? []) : await store.listEvents(m.id, EVENTS_IN_MACHINE),
      hostReachable: hosts.isReachable(m.host_id),
      lease: opts.includeLease ? await store.getLease(m.id) : undefined,
      nonce: opts.nonce,
    });

  router.get(BASE, async (ctx) => {
    const { app } = await appOf(ctx);
    const states = ctx.query.get('state')?.split(',').map((s) => s.trim()).filter(Boolean);
    for (const state of states ?? []) {
      if (!(LISTABLE_STATES as readonly string[]).includes(state)) {
        throw new HangarError('invalid_argument', `query parameter state: ${JSON.stringify(state)} is not a state to list by; use ${LISTABLE_STATES.join(', ')}`);
      }
    }
    const metadata: Record<string, string> = {};
    for (const [key, value] of ctx.query) if (key.startsWith('metadata.')) metadata[key.slice('metadata.'.length)] = value;
    const summary = queryBool(ctx.query, 'summary') ?? false;
    const includeLease = queryBool(ctx.query, 'include_leases') ?? false;
    const limit = queryInt(ctx.query, 'limit', 1, 1000);
    let list = await machines.list(app, {
      region: ctx.query.get('region') || undefined,
      states,
      includeDeleted: queryBool(ctx.query, 'include_deleted') ?? false,
      metadata,
    });
    const cursor = ctx.query.get('cursor');
    if (cursor) list = list.slice(list.findIndex((m) => m.id === cursor) + 1);
    const headers: Record<string, string> = {};
    if (limit !== undefined && list.length > limit) {
      list = list.slice(0, limit);
      headers['fly-next-cursor'] = list[list.length - 1]!.id;
    }
    const events = summary ? undefined : await store.listRecentEventsOfApp(app.id, EVENTS_IN_MACHINE);
    const body = await Promise.all(list.map((m) => render(m, { summary, includeLease, events })));
    return new Reply(200, body, headers);
  });

  router.post(BASE, async (ctx) => {
    const { app, org } = await appOf(ctx);
    const request = parseWith(CreateMachineRequest, (await ctx.body()) ?? {});
    const { machine, nonce } = await machines.create(app, org.slug, request, deps.caller(ctx).name);
    return render(machine, { nonce });
  });

  router.get(ONE, async (ctx) => {
    const { app } = await appOf(ctx);
    const machine = await machines.get(app, ctx.params.machine_id!);
    const version = ctx.query.get('version');
    if (version && version !== machine.version) {
      const found = (await store.listVersions(machine.id)).find((v) => v.version === version);
      if (!found) throw notFound(`version ${version} of machine ${machine.id}`);
      return { ...(await render(machine)), version, instance_id: version, config: found.config, state: 'replaced' };
    }
    return render(machine, { includeLease: queryBool(ctx.query, 'include_leases') ?? false });
  });

  router.post(ONE, async (ctx) => {
    const { app, org } = await appOf(ctx);
    const request = parseWith(UpdateMachineRequest, (await ctx.body()) ?? {});
    const { machine, nonce } = await machines.update(app, org.slug, ctx.params.machine_id!, request, nonceOf(ctx), deps.caller(ctx).name);
    return render(machine, { nonce });
  });

  router.delete(ONE, async (ctx) => {
    const { app } = await appOf(ctx);
    const force = (queryBool(ctx.query, 'force') ?? false) || (queryBool(ctx.query, 'kill') ?? false);
    return machines.destroy(app, ctx.params.machine_id!, nonceOf(ctx), force);
  });

  router.post(`${ONE}/start`, async (ctx) => {
    const { app } = await appOf(ctx);
    return machines.start(app, ctx.params.machine_id!, nonceOf(ctx));
  });

  router.post(`${ONE}/stop`, async (ctx) => {
    const { app } = await appOf(ctx);
    const body = parseWith(StopRequest, (await ctx.body()) ?? {});
    return machines.stop(app, ctx.params.machine_id!, nonceOf(ctx), body);
  });

  router.post(`${ONE}/restart`, async (ctx) => {
    const { app } = await appOf(ctx);
    const body = parseWith(StopRequest, (await ctx.body()) ?? {});
    return machines.restart(app, ctx.params.machine_id!, nonceOf(ctx), {
      signal: ctx.query.get('signal') ?? body.signal,
      timeout: ctx.query.get('timeout') ?? body.timeout,
    });
  });

  router.post(`${ONE}/suspend`, async (ctx) => {
    const { app } = await appOf(ctx);
    return machines.suspend(app, ctx.params.machine_id!, nonceOf(ctx));
  });

  router.post(`${ONE}/signal`, async (ctx) => {
    const { app } = await appOf(ctx);
    const body = parseWith(SignalRequest, await ctx.body());
    return machines.signal(app, ctx.params.machine_id!, body.signal);
  });

  router.post(`${ONE}/cordon`, async (ctx) => {
    const { app } = await appOf(ctx);
    return machines.setCordoned(app, ctx.params.machine_id!, nonceOf(ctx), true);
  });

  router.post(`${ONE}/uncordon`, async (ctx) => {
    const { app } = await appOf(ctx);
    return machines.setCordoned(app, ctx.params.machine_id!, nonceOf(ctx), false);
  });

  router.get(`${ONE}/wait`, async (ctx) => {
    const { app } = await appOf(ctx);
    const states = ctx.query.getAll('state').flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    const rawTimeout = ctx.query.get('timeout');
    const timeoutSeconds = rawTimeout === null || rawTimeout === '' ? 60 : Number(rawTimeout.replace(/s$/, ''));
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 300) {
      throw new HangarError('invalid_argument', `query parameter timeout: expected whole seconds from 1 to 300, got ${JSON.stringify(rawTimeout)}`);
    }
    const aborter = new AbortController();
    ctx.res.on('close', () => aborter.abort());
    return machines.wait(app, ctx.params.machine_id!, {
      states,
      timeoutSeconds,
      version: ctx.query.get('version') ?? ctx.query.get('instance_id') ?? undefined,
      fromEventId: ctx.query.get('from_event_id') ?? undefined,
      signal: aborter.signal,
    });
  });

  router.get(`${ONE}/events`, async (ctx) => {
    const { app } = await appOf(ctx);
    const machine = await machines.get(app, ctx.params.machine_id!);
    const limit = queryInt(ctx.query, 'limit', 1, 1000) ?? 100;
    return store.listEvents(machine.id, limit);
  });

  router.get(`${ONE}/versions`, async (ctx) => {
    const { app } = await appOf(ctx);
    const machine = await machines.get(app, ctx.params.machine_id!);
    const versions = await store.listVersions(machine.id);
    return versions.map((v) => ({ version: v.version, user_config: v.config }));
  });

  router.get(`${ONE}/ps`, async (ctx) => {
    const { app } = await appOf(ctx);
    return machines.ps(app, ctx.params.machine_id!);
  });

  router.post(`${ONE}/exec`, async (ctx) => {
    const { app } = await appOf(ctx);
    const body = parseWith(ExecRequest, await ctx.body());
    const command = body.command ?? shellWords('cmd', body.cmd!);
    if (command.length === 0) throw new HangarError('invalid_argument', 'cmd: the command is empty; pass the program to run');
    return machines.exec(app, ctx.params.machine_id!, command, body.stdin, body.timeout);
  });

  router.get(`${ONE}/lease`, async (ctx) => {
    const { app } = await appOf(ctx);
    return renderLease(await machines.getLease(app, ctx.params.machine_id!));
  });

  router.post(`${ONE}/lease`, async (ctx) => {
    const { app } = await appOf(ctx);
    const body = parseWith(CreateLeaseRequest, (await ctx.body()) ?? {});
    const ttl = queryInt(ctx.query, 'ttl', 1, 3600) ?? body.ttl ?? DEFAULT_LEASE_TTL_S;
    const lease = await machines.acquireLease(app, ctx.params.machine_id!, nonceOf(ctx), deps.caller(ctx).name, body.description ?? '', ttl);
    return new Reply(201, renderLease(lease));
  });

  router.delete(`${ONE}/lease`, async (ctx) => {
    const { app } = await appOf(ctx);
    await machines.releaseLease(app, ctx.params.machine_id!, nonceOf(ctx));
    return { status: 'success', data: { ok: true } };
  });

  router.get(`${ONE}/metadata`, async (ctx) => {
    const { app } = await appOf(ctx);
    return (await machines.get(app, ctx.params.machine_id!)).config.metadata ?? {};
  });

  const patchMetadata = async (ctx: RequestContext) => {
    const { app } = await appOf(ctx);
    const body = parseWith(UpdateMetadataRequest, await ctx.body());
    await machines.updateMetadata(app, ctx.params.machine_id!, body.metadata, body.machine_version);
    return new Reply(204, undefined);
  };
  router.patch(`${ONE}/metadata`, patchMetadata);
  router.put(`${ONE}/metadata`, patchMetadata);

  router.get(`${ONE}/metadata/{key}`, async (ctx) => {
    const { app } = await appOf(ctx);
    const machine = await machines.get(app, ctx.params.machine_id!);
    const value = machine.config.metadata?.[ctx.params.key!];
    if (value === undefined) throw notFound(`metadata key "${ctx.params.key}" on machine ${machine.id}`);
    return { value };
  });

  router.post(`${ONE}/metadata/{key}`, async (ctx) => {
    const { app } = await appOf(ctx);
    const body = parseWith(UpsertMetadataKeyRequest, await ctx.body());
    await machines.updateMetadata(app, ctx.params.machine_id!, { [ctx.params.key!]: body.value }, undefined);
    return new Reply(204, undefined);
  });

  router.delete(`${ONE}/metadata/{key}`, async (ctx) => {
    const { app } = await appOf(ctx);
    await machines.updateMetadata(app, ctx.params.machine_id!, { [ctx.params.key!]: null }, undefined);
    return new Reply(204, undefined);
  });
}

function header(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value[0] : value || undefined;
}
