/**
 * The agent's HTTP API (the RPC contract in `api-types/agent.ts`), on the shared router. Every
 * request needs `Authorization: Bearer <agent token>`; bodies are parsed with the contract's zod
 * schemas, so handlers only see typed values and a bad body answers `invalid_argument` naming the
 * field. Errors use the public `{error, status}` body with the closed code set.
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AgentCreateRequest, AgentExecRequest, type AgentInfo, AgentSignalRequest, AgentStopRequest, AgentUpdateRequest,
} from '../../api-types/agent.js';
import { HangarError, invalidArgument } from '../../core/errors.js';
import { MACHINE_ID_PATTERN } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { parseWith } from '../../core/validation.js';
import { dispatch, queryBool, queryInt, type RequestContext, Router } from '../../http/router.js';
import type { MachineManager } from '../machines/machine-manager.js';
import type { EventStreams } from './event-stream.js';
import { type ImageRouteDeps, registerImageRoutes } from './image-routes.js';

export interface AgentServerOptions {
  manager: MachineManager;
  streams: EventStreams;
  token: string;
  logger: Logger;
  info: () => AgentInfo;
  /** Image import/list/gc routes (`image-routes.ts`). */
  images?: Omit<ImageRouteDeps, 'driver'>;
}

export function buildAgentRouter(options: AgentServerOptions): Router {
  const { manager, streams } = options;
  const id = (ctx: RequestContext): string => {
    const value = ctx.params.id!;
    if (!MACHINE_ID_PATTERN.test(value)) throw new HangarError('not_found', `machine ${value} not found`);
    return value;
  };
  const router = new Router()
    .get('/agent/v1/info', () => options.info())
    .get('/agent/v1/machines', () => manager.list())
    .get('/agent/v1/machines/{id}', (ctx) => manager.get(id(ctx)))
    .post('/agent/v1/machines', async (ctx) => {
      const body = parseWith(AgentCreateRequest, await ctx.body());
      return manager.create(body.spec, body.start);
    })
    .put('/agent/v1/machines/{id}', async (ctx) => {
      const body = parseWith(AgentUpdateRequest, await ctx.body());
      if (body.spec.id !== id(ctx)) throw invalidArgument(`spec.id: must match the machine id in the path (${ctx.params.id}), got ${JSON.stringify(body.spec.id)}`);
      return manager.update(body.spec, body.start);
    })
    .post('/agent/v1/machines/{id}/start', (ctx) => manager.start(id(ctx)))
    .post('/agent/v1/machines/{id}/stop', async (ctx) => manager.stop(id(ctx), parseWith(AgentStopRequest, (await ctx.body()) ?? {})))
    .post('/agent/v1/machines/{id}/restart', async (ctx) => manager.restart(id(ctx), parseWith(AgentStopRequest, (await ctx.body()) ?? {})))
    .post('/agent/v1/machines/{id}/suspend', (ctx) => manager.suspend(id(ctx)))
    .post('/agent/v1/machines/{id}/signal', async (ctx) => {
      const body = parseWith(AgentSignalRequest, await ctx.body());
      return manager.signal(id(ctx), body.signal);
    })
    .post('/agent/v1/machines/{id}/exec', async (ctx) => {
      const body = parseWith(AgentExecRequest, await ctx.body());
      return manager.exec(id(ctx), body);
    })
    .get('/agent/v1/machines/{id}/ps', (ctx) => manager.ps(id(ctx)))
    .get('/agent/v1/machines/{id}/logs', async (ctx) => {
      const machineId = id(ctx);
      manager.get(machineId);
      const driver = manager.driver;
      if (!driver.readLogs) throw new HangarError('failed_precondition', `the ${driver.name} driver keeps no machine logs`);
      const tail = queryInt(ctx.query, 'tail', 0, 100_000) ?? 100;
      const follow = queryBool(ctx.query, 'follow') ?? false;
      const abort = new AbortController();
      ctx.res.once('close', () => abort.abort());
      const lines = driver.readLogs(machineId, { tail, follow, signal: abort.signal })[Symbol.asyncIterator]();
      // The first read may throw (unknown machine): before the headers go out, so it answers an error.
      let next = await lines.next();
      ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      ctx.res.flushHeaders();
      try {
        while (!next.done && !abort.signal.aborted) {
          if (!ctx.res.write(`${JSON.stringify(next.value)}\n`)) await new Promise((r) => ctx.res.once('drain', r));
          next = await lines.next();
        }
      } finally {
        await lines.return?.();
        ctx.res.end();
      }
    })
    .delete('/agent/v1/machines/{id}', (ctx) => manager.destroy(id(ctx), queryBool(ctx.query, 'force') ?? false))
    .get('/agent/v1/events', (ctx) => {
      streams.serve(ctx.res, queryInt(ctx.query, 'after', 0, Number.MAX_SAFE_INTEGER));
    });
  if (options.images) registerImageRoutes(router, { driver: manager.driver, ...options.images });
  return router;
}

/** Constant-time bearer check; the token itself is never logged or echoed. */
export function checkBearer(header: string | undefined, token: string): void {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) throw new HangarError('unauthenticated', 'missing agent token: send Authorization: Bearer <agent token>');
  const given = Buffer.from(match[1]!.trim());
  const expected = Buffer.from(token);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new HangarError('unauthenticated', 'invalid agent token');
  }
}

export function createAgentHttpServer(options: AgentServerOptions): Server {
  const router = buildAgentRouter(options);
  const server = createServer((req, res) => {
    void dispatch(router, req, res, { logger: options.logger, before: (ctx) => checkBearer(ctx.req.headers.authorization, options.token) });
  });
  // Operations may wait for a stop timeout (up to 5 min); do not cut them off.
  server.requestTimeout = 0;
  return server;
}

export function listenUrl(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
