/**
 * `hangar proxy`: the edge proxy as its own process, following an API server's route stream.
 * Several proxies can follow one API server.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.js';
import { createProxy, type Listen } from './create-proxy.js';
import { proxyReadyLine } from './ready-line.js';
import { defaultProxyThreads, parseThreads } from './threads-flag.js';

export const DEFAULT_PROXY_LISTEN = '0.0.0.0:8080';
export const DEFAULT_APP_DOMAIN = 'localhost';

export class ProxyUsageError extends Error {}

export function parseListenFlag(flag: string, value: string): Listen {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new ProxyUsageError(`--${flag}: expected HOST:PORT such as 127.0.0.1:8080, got ${JSON.stringify(value)}`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

const FLAGS = {
  'api-url': { type: 'string' },
  'token-file': { type: 'string' },
  'proxy-listen': { type: 'string' },
  'https-listen': { type: 'string' },
  'metrics-listen': { type: 'string' },
  'app-domain': { type: 'string' },
  region: { type: 'string' },
  'near-regions': { type: 'string' },
  'cert-dir': { type: 'string' },
  'autostop-interval': { type: 'string' },
  threads: { type: 'string' },
} as const;

export async function runProxyMain(args: string[]): Promise<number> {
  let values: Partial<Record<keyof typeof FLAGS, string>>;
  try {
    values = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    throw new ProxyUsageError(`hangar proxy: ${(err as Error).message.split('\n')[0]}; known flags: ${Object.keys(FLAGS).map((f) => `--${f}`).join(', ')}`);
  }
  const apiUrl = values['api-url'] ?? process.env.HANGAR_API_URL ?? 'http://127.0.0.1:4280';
  const token = values['token-file'] ? readFileSync(values['token-file'], 'utf8').trim() : process.env.HANGAR_API_TOKEN;
  if (!token) throw new ProxyUsageError('hangar proxy: no API token: pass --token-file FILE or set HANGAR_API_TOKEN');
  const region = values.region ?? 'lcl';
  if (!/^[a-z]{3}$/.test(region)) throw new ProxyUsageError(`--region: expected a three-letter region code, got ${JSON.stringify(region)}`);
  const interval = values['autostop-interval'] ? parseDurationMs(values['autostop-interval']) : undefined;
  let threads = defaultProxyThreads();
  try {
    if (values.threads !== undefined) threads = parseThreads('threads', values.threads);
  } catch (err) {
    throw new ProxyUsageError((err as Error).message);
  }
  const logger = createLogger({ component: 'proxy' });
  const proxy = createProxy({
    apiUrl, token, logger, region,
    listen: parseListenFlag('proxy-listen', values['proxy-listen'] ?? DEFAULT_PROXY_LISTEN),
    ...(values['https-listen'] ? { httpsListen: parseListenFlag('https-listen', values['https-listen']) } : {}),
    ...(values['metrics-listen'] ? { metricsListen: parseListenFlag('metrics-listen', values['metrics-listen']) } : {}),
    domain: values['app-domain'] ?? DEFAULT_APP_DOMAIN,
    ...(values['near-regions'] ? { nearRegions: values['near-regions'].split(',').map((r) => r.trim()).filter(Boolean) } : {}),
    ...(values['cert-dir'] ? { certDir: values['cert-dir'] } : {}),
    ...(interval !== undefined ? { autostopIntervalMs: interval } : {}),
    threads,
    // An idle proxy costs one isolate (the density budget); the second loop starts with traffic.
    threadsOnLoad: true,
  });
  let running: Awaited<ReturnType<typeof proxy.start>>;
  try {
    running = await proxy.start();
  } catch (err) {
    // A listener that failed (port in use): stop what did start (the route stream, timers), so the
    // process exits with the error instead of lingering half up.
    await proxy.close().catch(() => undefined);
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      const what = e.code === 'EADDRINUSE' ? 'another process listens there' : e.code === 'EACCES' ? 'permission denied (ports below 1024 need root)' : 'no such address on this host';
      throw new ProxyUsageError(`hangar proxy: cannot listen on ${e.address}:${e.port}: ${what}; pass another --proxy-listen, --https-listen or --metrics-listen HOST:PORT`);
    }
    throw err;
  }
  const line = proxyReadyLine({ url: running.url, httpsUrl: running.httpsUrl, metricsUrl: running.metricsUrl, appDomain: values['app-domain'] ?? DEFAULT_APP_DOMAIN, region });
  process.stdout.write(`${line}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await proxy.close();
  return 0;
}

export function parseDurationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new ProxyUsageError(`expected a duration such as 30s or 500ms, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000);
}
