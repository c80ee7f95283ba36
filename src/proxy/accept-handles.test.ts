import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { test } from 'node:test';
import { childrenOf, cmdline } from '../testkit/processes.js';
import { until } from '../testkit/waiting.js';
import { AcceptBooster } from './accept-handles.js';

const listening = (backlog: number) =>
  new Promise<Server>((resolve) => {
    const s = createServer((c) => c.end('original\n'));
    s.listen({ host: '127.0.0.1', port: 0, backlog }, () => resolve(s));
  });
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));
const ask = (port: number) =>
  new Promise<string>((resolve, reject) => {
    let out = '';
    const c = connect({ host: '127.0.0.1', port });
    c.setEncoding('utf8');
    c.on('data', (d) => (out += d));
    c.on('end', () => resolve(out));
    c.on('error', reject);
  });

/** This process's accept-handle helpers (children running the helper script). */
const helperCount = () => childrenOf(process.pid).filter((pid) => cmdline(pid).includes('fd: 3')).length;

const backlogOf = (port: number) => execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/)[2];

test('accept handles: boost adds copies that accept on their own and keep the backlog; relax drops them', { timeout: 20_000 }, async () => {
  const server = await listening(3000);
  const port = (server.address() as AddressInfo).port;
  const booster = new AcceptBooster(server, { copies: 3, backlog: 3000, onConnection: (c) => c.end('copy\n') });
  await booster.start();
  try {
    assert.equal(booster.handles(), 1, 'no copies before a boost');
    assert.equal(helperCount(), 0, 'no helper process until a boost needs one');
    await Promise.all([booster.boost(), booster.boost()]); // concurrent calls share one request
    assert.equal(booster.handles(), 4);
    await until('the helper to end once the copies arrived', () => helperCount() === 0);
    // Re-listening on a received socket must not shrink its accept queue to Node's default 511.
    assert.equal(backlogOf(port), '3000', 'ss shows the listen backlog as Send-Q');
    booster.relax();
    assert.equal(booster.handles(), 1);
    await booster.boost(); // a new helper for each boost
    assert.equal(booster.handles(), 4);
    assert.equal(backlogOf(port), '3000');
    // With the original handle closed, the copies alone still accept on the same port.
    await close(server);
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(port)));
    assert.deepEqual(new Set(answers), new Set(['copy\n']));
  } finally {
    await booster.close();
  }
  // Every descriptor is gone (the helper's too): the port can be bound again.
  const again = createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen({ host: '127.0.0.1', port }, () => resolve());
  });
  await close(again);
});

test('accept handles: zero copies spawn nothing; a bad count is refused with the value', async () => {
  const server = await listening(511);
  try {
    const none = new AcceptBooster(server, { copies: 0, backlog: 511, onConnection: () => undefined });
    await none.start();
    await none.boost();
    assert.equal(none.handles(), 1);
    assert.throws(() => new AcceptBooster(server, { copies: 1.5, backlog: 511, onConnection: () => undefined }), /acceptHandles: expected an integer 0\.\.64, got 1\.5/);
  } finally {
    await close(server);
  }
});
