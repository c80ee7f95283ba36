/**
 * Machine logs, a Hangar extension of the Machines API (Fly serves logs elsewhere):
 * `GET /v1/apps/{app_name}/logs` and `GET /v1/apps/{app_name}/machines/{machine_id}/logs`, with
 * `tail` (lines, default 100) and `follow` (keep streaming). Answers NDJSON `LogEntry` lines: first
 * the newest `tail` lines of all chosen machines merged by time, then, with `follow`, new lines as
 * they come. Machines started after a follow began are not picked up (reconnect to see them), and a
 * line printed between reading the backlog and subscribing can be missed.
 * @module
 */
import type { AgentLogLine } from '../../api-types/agent.js';
import type { LogEntry } from '../../api-types/machine.js';
import { HangarError } from '../../core/errors.js';
import { queryBool, queryInt, type RequestContext, type Router } from '../../http/router.js';
import type { MachineRecord } from '../../store/store.js';
import type { Caller } from '../auth.js';
import type { HostRegistry } from '../host-registry.js';
import type { AppService } from '../services/apps.js';
import type { MachineService } from '../services/machines.js';

export interface LogRouteDeps {
  apps: AppService;
  machines: MachineService;
  hosts: HostRegistry;
  caller(ctx: RequestContext): Caller;
}

export function registerLogRoutes(router: Router, deps: LogRouteDeps): void {
  const serve = async (ctx: RequestContext, machineId: string | undefined) => {
    const { app } = await deps.apps.find(deps.caller(ctx), ctx.params.app_name!);
    const tail = queryInt(ctx.query, 'tail', 0, 10_000) ?? 100;
    const follow = queryBool(ctx.query, 'follow') ?? false;
    const chosen = machineId
      ? [await deps.machines.get(app, machineId)]
      : (await deps.machines.list(app, {})).filter((m) => m.state !== 'destroyed');
    await streamLogs(ctx, deps.hosts, chosen, { tail, follow, single: machineId !== undefined });
  };
  router.get('/v1/apps/{app_name}/logs', (ctx) => serve(ctx, ctx.query.get('machine') || undefined));
  router.get('/v1/apps/{app_name}/machines/{machine_id}/logs', (ctx) => serve(ctx, ctx.params.machine_id!));
}

async function streamLogs(
  ctx: RequestContext, hosts: HostRegistry, machines: MachineRecord[], options: { tail: number; follow: boolean; single: boolean },
): Promise<void> {
  const abort = new AbortController();
  ctx.res.once('close', () => abort.abort());
  const toEntry = (m: MachineRecord, line: AgentLogLine): LogEntry => ({
    timestamp: line.timestamp, machine_id: m.id, region: m.region, stream: line.stream, message: line.message,
  });

  // The backlog: each machine's tail, merged by time, newest `tail` overall. A machine whose driver
  // keeps no logs is skipped unless it was asked for by id.
  const backlogs = await Promise.all(
    machines.map(async (m) => {
      const lines: LogEntry[] = [];
      try {
        for await (const line of hosts.link(m.host_id).logs(m.id, { tail: options.tail, follow: false, signal: abort.signal })) lines.push(toEntry(m, line));
      } catch (err) {
        if (options.single || !(err instanceof HangarError) || err.code !== 'failed_precondition') throw err;
      }
      return lines;
    }),
  );
  const merged = backlogs.flat().sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  const backlog = options.tail > 0 ? merged.slice(-options.tail) : [];
  ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'fly-request-id': ctx.requestId });
  for (const entry of backlog) ctx.res.write(`${JSON.stringify(entry)}\n`);
  if (!options.follow) {
    ctx.res.end();
    return;
  }
  ctx.res.flushHeaders();
  await Promise.all(
    machines.map(async (m) => {
      try {
        for await (const line of hosts.link(m.host_id).logs(m.id, { tail: 0, follow: true, signal: abort.signal })) {
          if (!ctx.res.write(`${JSON.stringify(toEntry(m, line))}\n`)) await new Promise((r) => ctx.res.once('drain', r));
        }
      } catch {
        // One machine's stream failing (its host went away) must not end the others.
      }
    }),
  );
  ctx.res.end();
}
