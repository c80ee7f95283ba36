import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HangarError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { AgentLink } from './agent-link.js';

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const close = (server: Server) => new Promise<void>((resolve) => {
  server.closeAllConnections();
  server.close(() => resolve());
});

test('RPCs reuse one kept-alive connection and still work after the agent closed it as idle', async () => {
  const sockets = new Set<unknown>();
  const { server, url } = await serve((req, res) => {
    sockets.add(req.socket);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ events: [] }));
  });
  const link = new AgentLink({ url, token: 't', logger: silentLogger });
  try {
    for (let i = 0; i < 5; i++) assert.deepEqual(await link.start('m1'), { events: [] });
    assert.equal(sockets.size, 1, 'five calls in a row share one connection');
    server.closeIdleConnections(); // as the agent does after its keep-alive timeout
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await link.start('m1'), { events: [] });
    assert.equal(sockets.size, 2);
  } finally {
    link.close();
    await close(server);
  }
});

test('an agent that does not answer in time is unavailable, "timed out"', async () => {
  const { server, url } = await serve(() => undefined);
  const link = new AgentLink({ url, token: 't', logger: silentLogger, timeoutMs: 100 });
  try {
    await assert.rejects(link.start('m1'), (err: unknown) => err instanceof HangarError && err.code === 'unavailable' && /POST \/agent\/v1\/machines\/m1\/start: timed out/.test(err.message));
  } finally {
    link.close();
    await close(server);
  }
});

test("an agent's error answer becomes its code; a lost connection mid-answer is unavailable", async () => {
  const { server, url } = await serve((req, res) => {
    if (req.url?.endsWith('/start')) {
      res.writeHead(412, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'machine m1 is destroyed', status: 'failed_precondition' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"events":');
    setTimeout(() => req.socket.destroy(), 20);
  });
  const link = new AgentLink({ url, token: 't', logger: silentLogger });
  try {
    await assert.rejects(link.start('m1'), (err: unknown) => err instanceof HangarError && err.code === 'failed_precondition' && /destroyed/.test(err.message));
    await assert.rejects(link.suspend('m1'), (err: unknown) => err instanceof HangarError && err.code === 'unavailable');
  } finally {
    link.close();
    await close(server);
  }
});
