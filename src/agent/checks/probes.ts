/**
 * One run of one check against an address: a TCP connect, or an HTTP(S) request that passes on a
 * 2xx answer (redirects are not followed and do not pass, as on Fly). Each run is bounded by the
 * check's timeout and answers a short human-readable `output`.
 * @module
 */
import { connect } from 'node:net';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { STATUS_CODES } from 'node:http';
import type { CheckSpec } from './check-specs.js';

export interface ProbeResult {
  passing: boolean;
  output: string;
}

export type Probe = (spec: CheckSpec, host: string, signal?: AbortSignal) => Promise<ProbeResult>;

/** Runs the probe the check's type names. Never throws. */
export const runProbe: Probe = async (spec, host, signal) => {
  if (spec.port === undefined) return { passing: false, output: `${label(spec)}: the check names no port` };
  try {
    return spec.type === 'http' ? await httpProbe(spec, host, spec.port, signal) : await tcpProbe(spec, host, spec.port, signal);
  } catch (err) {
    return { passing: false, output: `${label(spec)}: ${describeError(err)}` };
  }
};

function label(spec: CheckSpec): string {
  return spec.type === 'http' ? `HTTP ${spec.method} ${spec.path}` : `TCP connect to port ${spec.port ?? '?'}`;
}

/**
 * The frame every probe shares: `begin` starts the attempt and calls `finish` with its outcome; the
 * first outcome wins, whether it is the attempt's, the timeout's or a cancel, and `close` (which
 * `begin` returns) then ends the attempt's socket.
 */
function probe(spec: CheckSpec, signal: AbortSignal | undefined, begin: (finish: (result: ProbeResult) => void) => () => void): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    let close: (() => void) | undefined;
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      close?.();
      resolve(result);
    };
    const onAbort = () => finish({ passing: false, output: `${label(spec)}: cancelled` });
    const timer = setTimeout(() => finish({ passing: false, output: `${label(spec)}: timed out after ${spec.timeoutMs} ms` }), spec.timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    close = begin(finish);
    if (done) close();
  });
}

function tcpProbe(spec: CheckSpec, host: string, port: number, signal?: AbortSignal): Promise<ProbeResult> {
  return probe(spec, signal, (finish) => {
    const socket = connect({ host, port });
    socket.once('connect', () => finish({ passing: true, output: `${label(spec)}: connected` }));
    socket.once('error', (err) => finish({ passing: false, output: `${label(spec)}: ${describeError(err)}` }));
    return () => socket.destroy();
  });
}

function httpProbe(spec: CheckSpec, host: string, port: number, signal?: AbortSignal): Promise<ProbeResult> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of spec.headers) {
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'user-agent')) headers['user-agent'] = 'hangar-health-check';
  const options = {
    host, port, method: spec.method, path: spec.path, headers, agent: false as const,
    ...(spec.protocol === 'https' ? { rejectUnauthorized: !spec.tlsSkipVerify, ...(spec.tlsServerName ? { servername: spec.tlsServerName } : {}) } : {}),
  };
  return probe(spec, signal, (finish) => {
    const onResponse = (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      res.resume();
      const text = `${status} ${res.statusMessage || STATUS_CODES[status] || ''}`.trim();
      finish({ passing: status >= 200 && status < 300, output: `${label(spec)}: ${text}` });
    };
    const req = spec.protocol === 'https' ? httpsRequest(options, onResponse) : httpRequest(options, onResponse);
    req.once('error', (err) => finish({ passing: false, output: `${label(spec)}: ${describeError(err)}` }));
    req.end();
    return () => req.destroy();
  });
}

/** `connect ECONNREFUSED`, `certificate has expired`, … without addresses (they are the machine's own). */
export function describeError(err: unknown): string {
  const e = err as { code?: string; syscall?: string; message?: string };
  if (e?.code && e.syscall) return `${e.syscall} ${e.code}`;
  if (e?.code === 'ECONNRESET') return 'connection reset (ECONNRESET)';
  if (e?.message) return e.code && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message;
  return String(err);
}
