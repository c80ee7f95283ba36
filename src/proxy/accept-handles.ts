/**
 * More accepts per event-loop iteration for a listening socket. libuv (1.46, Node 20) accepts one
 * connection per readable event of a listening handle and then returns to the loop, so with a
 * thousand busy connections (an iteration of tens of ms) a burst of new connections drains from
 * the accept queue at ~100–200 per second and the last ones time out. Every extra handle on the
 * same socket is one more accept per iteration.
 *
 * Node 20 has no SO_REUSEPORT and no dup(), but a handle sent over an IPC channel arrives as a new
 * descriptor of the same socket (SCM_RIGHTS). So a short-lived helper process receives the
 * listening socket once and sends it back `copies` times; each copy becomes a `net.Server` here
 * that feeds the same connection handler. The kernel keeps one accept queue; nothing else changes.
 * @module
 */
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';

/**
 * The helper: echo the received listening socket back `copies` times, then leave. It sends the raw
 * handle, not the server: a received `net.Server` is re-listened with Node's default backlog (511),
 * which would shrink the socket's accept queue; a raw handle is listened here with ours.
 */
const HELPER = `
process.once('message', (m, server) => {
  let left = m.copies;
  const next = () => {
    if (left-- === 0) { server.close(); process.disconnect(); return; }
    process.send({ copy: m.copies - left }, server._handle, { keepOpen: true }, next);
  };
  next();
});`;

/**
 * Adds `copies` more handles on `server`'s listening socket, each calling `onConnection`. Resolves
 * with them (close them with the server). Rejects, naming the cause, when the helper fails.
 */
export function addAcceptHandles(server: Server, copies: number, backlog: number, onConnection: (s: Socket) => void, timeoutMs = 10_000): Promise<Server[]> {
  if (!Number.isInteger(copies) || copies < 0 || copies > 64) {
    return Promise.reject(new Error(`acceptHandles: expected an integer 0..64, got ${copies}`));
  }
  if (copies === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const got: Server[] = [];
    const child = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      for (const s of got) s.close();
      reject(new Error(`acceptHandles: could not duplicate the listening socket: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer from the helper process within ${timeoutMs} ms`), timeoutMs);
    child.on('error', (err) => fail(err.message));
    child.on('message', (_m, handle) => {
      if (!handle) return fail('the helper sent a message without a socket');
      const copy = createServer(onConnection);
      got.push(copy);
      // listen() on the already-listening socket only sets the backlog again (the helper set 511).
      copy.listen(handle as never, backlog, () => {
        if (got.filter((c) => c.listening).length < copies) return;
        clearTimeout(timer);
        child.disconnect();
        resolve(got);
      });
    });
    // A clean exit can overtake the last copy (it is delivered on the IPC pipe); only a failed
    // helper ends the wait early, the timeout covers the rest.
    child.on('exit', (code, signal) => {
      if (got.length < copies && (code !== 0 || signal)) fail(`helper exited (${signal ?? `code ${code}`}) after ${got.length} of ${copies} copies`);
    });
    child.send({ copies }, server, { keepOpen: true });
  });
}
