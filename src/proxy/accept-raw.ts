/**
 * Accepted connections as raw libuv handles instead of Node-made sockets. A `net.Server` wraps
 * every accepted handle in a `net.Socket` that reads with Node's default allocation (64 KiB
 * malloc'd, shrunk and wrapped in a new ArrayBuffer per read), and Node offers no option to give
 * that socket `onread`. Taking the handle lets the proxy build the socket itself with `onread` into
 * one shared buffer (HttpProxy.adopt), the way it already reads machine connections.
 *
 * `_handle.onconnection` is the listening handle's accept callback (lib/net.js sets it in
 * `setupListenHandle`; node:cluster relies on the same field). It is replaced after `listen`, so
 * the server no longer counts these connections (`getConnections`, `maxConnections`) and emits no
 * `'connection'`; the proxy tracks and closes its client connections itself.
 * @module
 */
import type { Server } from 'node:net';

interface ListenHandle {
  onconnection: (err: number, clientHandle?: unknown) => void;
}

/**
 * From now on, connections accepted on `server`'s socket go to `onHandle` as raw handles. An accept
 * error (EMFILE and the like) drops that one connection, as Node's own handler does after emitting
 * 'error'.
 */
export function acceptRaw(server: Server, onHandle: (clientHandle: unknown) => void): void {
  const handle = (server as unknown as { _handle?: ListenHandle | null })._handle;
  if (!handle || typeof handle.onconnection !== 'function') throw new Error('acceptRaw: the server is not listening (no listen handle)');
  handle.onconnection = (err, clientHandle) => {
    if (!err && clientHandle) onHandle(clientHandle);
  };
}
