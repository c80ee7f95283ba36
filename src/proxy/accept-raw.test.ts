import assert from 'node:assert/strict';
import { connect, createServer, Socket, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { acceptRaw } from './accept-raw.js';

test('acceptRaw hands accepted connections over as raw handles; the server emits no connection event', async () => {
  const server = createServer(() => assert.fail('the server made a socket itself'));
  assert.throws(() => acceptRaw(server, () => undefined), /not listening/);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const got: string[] = [];
  const served = new Promise<void>((resolve) => {
    acceptRaw(server, (handle) => {
      // The caller makes the socket, here with onread into its own buffer.
      const s = new Socket({
        handle,
        readable: true,
        writable: true,
        onread: {
          buffer: Buffer.alloc(16),
          callback: (n: number, buf: Uint8Array) => {
            got.push(Buffer.from(buf.subarray(0, n)).toString());
            s.end('pong');
            resolve();
            return true;
          },
        },
      } as ConstructorParameters<typeof Socket>[0]);
    });
  });
  const reply = await new Promise<string>((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port }, () => c.write('ping'));
    let data = '';
    c.on('data', (d) => (data += d.toString()));
    c.on('end', () => resolve(data));
    c.on('error', reject);
  });
  await served;
  assert.deepEqual(got, ['ping']);
  assert.equal(reply, 'pong');
  await new Promise<void>((r) => server.close(() => r()));
});
