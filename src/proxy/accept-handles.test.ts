import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { test } from 'node:test';
import { addAcceptHandles } from './accept-handles.js';

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

test('accept handles: copies of the listening socket accept on their own and keep the backlog', { timeout: 20_000 }, async () => {
  const server = await listening(3000);
  const port = (server.address() as AddressInfo).port;
  const copies = await addAcceptHandles(server, 3, 3000, (c) => c.end('copy\n'));
  try {
    assert.equal(copies.length, 3);
    // Re-listening on a received socket must not shrink its accept queue to Node's default 511.
    const ss = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/);
    assert.equal(ss[2], '3000', `ss shows the listen backlog as Send-Q: ${ss.join(' ')}`);
    // With the original handle closed, the copies alone still accept on the same port.
    await close(server);
    const answers = await Promise.all(Array.from({ length: 20 }, () => ask(port)));
    assert.deepEqual(new Set(answers), new Set(['copy\n']));
  } finally {
    await Promise.all(copies.map(close));
  }
  // Every descriptor is gone: the port can be bound again.
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
    assert.deepEqual(await addAcceptHandles(server, 0, 511, () => undefined), []);
    await assert.rejects(addAcceptHandles(server, 1.5, 511, () => undefined), /acceptHandles: expected an integer 0\.\.64, got 1\.5/);
  } finally {
    await close(server);
  }
});
