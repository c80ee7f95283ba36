/**
 * More descriptors of one listening socket, for more accept handles (accept-handles.ts) or for a
 * data-plane thread's own listener (data-plane-thread.ts). Node 20 has no `reusePort` and no
 * `dup()`, and a worker thread cannot receive a handle; but a handle sent over a child process's
 * IPC channel arrives as a new descriptor of the same socket (SCM_RIGHTS). So a short-lived helper
 * process inherits the socket as its fd 3 and sends it back `copies` times, and leaves when the
 * caller, holding all of them, disconnects.
 *
 * The helper wraps the socket without reading or listening: a listen there would accept connections
 * nobody serves and re-listen with Node's default backlog (511), shrinking the socket's accept
 * queue. Each copy arrives as a raw handle that the caller owns: closing it closes only that
 * descriptor. The helper is a whole Node process (~40 MB RSS), so it lives only this long.
 * @module
 */
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { acceptRaw } from './accept-raw.js';

const COPY_HELPER = `
const { Socket } = require('node:net');
const socket = new Socket({ fd: 3, readable: false, writable: false });
let left = Number(process.argv[1]);
const next = () => left-- > 0 && process.send({ copy: true }, socket._handle, { keepOpen: true }, next);
next();
// A handle still in flight would be lost if it left on its own: it leaves when the parent disconnects.
process.on('disconnect', () => process.exit(0));`;

/**
 * `copies` new descriptors of the listening socket `fd`, as raw handles. Rejects (and ends the
 * helper) when they do not all arrive within `timeoutMs` or `signal` aborts.
 */
export function copiesOfListener(fd: number, copies: number, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown[]> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const got: unknown[] = [];
    const child = spawn(process.execPath, ['-e', COPY_HELPER, String(copies)], { stdio: ['ignore', 'ignore', 'inherit', fd, 'ipc'] });
    const fail = (why: string) => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', aborted);
      child.kill('SIGKILL');
      // Copies that did arrive are descriptors of this process: close them, or the port stays bound.
      for (const h of got) (h as { close?: () => void }).close?.();
      reject(new Error(`could not copy the listening socket: ${why}`));
    };
    const aborted = () => fail('aborted');
    const timer = setTimeout(() => fail(`the helper process sent ${got.length} of ${copies} copies in ${timeoutMs} ms`), timeoutMs);
    o.signal?.addEventListener('abort', aborted);
    child.on('error', (err) => fail(`the helper process did not start: ${err.message}`));
    child.on('message', (_m, handle) => {
      if (handle) got.push(handle);
      if (got.length < copies) return;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', aborted);
      child.disconnect();
      resolve(got);
    });
    // 'close', not 'exit': it comes after the IPC channel is read to its end, so after the last copy.
    child.on('close', (code, signal) => {
      if (got.length < copies) fail(`the helper process exited (${signal ?? `code ${code}`}) after ${got.length} of ${copies} copies`);
    });
    // The helper must never keep the proxy alive on its own.
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
  });
}

/**
 * A `net.Server` accepting on one copy. listen() on an already-listening socket only sets its
 * backlog again, so the caller passes the socket's own. Accepted connections go to `onHandle` as
 * raw handles (accept-raw.ts) when given and this Node has the accept hook, else to `onConnection`.
 */
export function serverOnCopy(handle: unknown, backlog: number, onConnection: (s: Socket) => void, onHandle?: (clientHandle: unknown) => void): Promise<Server> {
  const server = createServer(onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(handle as never, backlog, () => {
      server.off('error', reject);
      try {
        if (onHandle) acceptRaw(server, onHandle);
      } catch {
        // No accept hook: `onConnection` serves with Node-made sockets.
      }
      resolve(server);
    });
  });
}
