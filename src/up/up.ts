/**
 * `hangar up`: the whole platform on this host, in the foreground. The API server runs in this
 * process on the embedded SQLite store; the agent runs as a child process (so a server restart never
 * takes running machines down with it), and so does the edge proxy (`hangar proxy`: the data path
 * gets an event loop and a core of its own, and a burst of traffic never delays the API, whose
 * start calls autostart itself waits on). Both are restarted if they die. Ctrl-C / SIGTERM stops
 * all three.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { crunProblems } from '../agent/drivers/crun/prerequisites.js';
import { realExecutor, realProbes } from '../host/probes.js';
import { HOST_REQUIREMENTS } from '../host/requirements.js';
import { setupHost } from '../host/runner.js';
import { writeCliConfig } from '../cli/config.js';
import { createLogger } from '../core/logger.js';
import { ADMIN_TOKEN_FILE, bootstrap } from '../server/bootstrap.js';
import { createApiServer } from '../server/create-server.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { SERVER_V8_FLAGS, serverProcessEnv } from './server-process.js';
import { parseProxyReadyLine } from '../proxy/ready-line.js';
import { parseThreads } from '../proxy/threads-flag.js';
import {
  DEFAULT_AGENT_LISTEN, DEFAULT_API_LISTEN, DEFAULT_REGION, defaultDataDir, parseListen, parseRegion, parseRoleArgs, UsageError,
} from './role-options.js';

const DRIVERS = ['crun', 'runc', 'fake'] as const;

interface ProxyUrls {
  url: string;
  httpsUrl: string | undefined;
  metricsUrl: string;
}

/**
 * Starts the edge proxy as a supervised child process and waits until it listens. It follows the
 * API's route stream like any other proxy, with the admin token from its file. Fails (and leaves
 * no process behind) when the first launch exits before it listens, e.g. a port in use.
 */
async function startUpProxy(o: { apiUrl: string; region: string; listen: string | undefined; httpsListen: string | undefined; domain: string | undefined; threads: number | undefined; dataDir: string }) {
  const { DEFAULT_APP_DOMAIN, DEFAULT_PROXY_LISTEN } = await import('../proxy/main.js');
  const domain = o.domain ?? DEFAULT_APP_DOMAIN;
  const listen = parseListen('proxy-listen', o.listen ?? DEFAULT_PROXY_LISTEN);
  const https = o.httpsListen === undefined ? undefined : parseListen('https-listen', o.httpsListen);
  const hostPort = (l: { host: string; port: number }) => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
  let ready: (urls: ProxyUrls) => void = () => {};
  const firstReady = new Promise<ProxyUrls>((resolve) => (ready = resolve));
  const proxy = supervise('proxy', [
    MAIN_JS, 'proxy', '--api-url', o.apiUrl, '--token-file', join(o.dataDir, ADMIN_TOKEN_FILE),
    '--proxy-listen', hostPort(listen), ...(https ? ['--https-listen', hostPort(https)] : []), '--app-domain', domain, '--region', o.region,
    '--metrics-listen', '127.0.0.1:0', '--cert-dir', join(o.dataDir, 'proxy-certs'), ...(o.threads ? ['--threads', String(o.threads)] : []),
  ], {
    onLine: (line) => {
      const r = parseProxyReadyLine(line);
      if (r && r.metricsUrl) ready({ url: r.url, httpsUrl: r.httpsUrl, metricsUrl: r.metricsUrl });
      else process.stdout.write(`${line}\n`);
    },
    fatalUntil: firstReady,
  });
  const failed = proxy.firstExit.then((how) => {
    throw new UsageError(`hangar up: the proxy did not start (${how}; its message is above). Free the port or pass --proxy-listen (or --https-listen) HOST:PORT, or --no-proxy`);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('hangar up: the proxy did not listen within 30 s')), 30_000)));
  try {
    const urls = await Promise.race([firstReady, failed, timeout]);
    return { ...urls, domain, stop: () => proxy.stop(), kill: () => proxy.kill() };
  } catch (err) {
    await proxy.stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
const MAIN_JS = fileURLToPath(new URL('../main.js', import.meta.url));

export async function runUp(args: string[]): Promise<number> {
  const flags = parseRoleArgs('up', args, {
    'data-dir': { type: 'string' },
    'api-listen': { type: 'string' },
    'agent-listen': { type: 'string' },
    'proxy-listen': { type: 'string' },
    'https-listen': { type: 'string' },
    'app-domain': { type: 'string' },
    'no-proxy': { type: 'boolean' },
    'proxy-threads': { type: 'string' },
    region: { type: 'string' },
    driver: { type: 'string' },
    'allow-egress': { type: 'boolean' },
  });
  const dataDir = flags['data-dir'] ?? defaultDataDir();
  const apiListen = parseListen('api-listen', flags['api-listen'] ?? DEFAULT_API_LISTEN);
  const agentListen = parseListen('agent-listen', flags['agent-listen'] ?? DEFAULT_AGENT_LISTEN);
  const region = parseRegion(flags.region ?? DEFAULT_REGION);
  let proxyThreads: number | undefined;
  try {
    if (flags['proxy-threads'] !== undefined) proxyThreads = parseThreads('proxy-threads', flags['proxy-threads']);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const driver = flags.driver ?? (await defaultDriver());
  if (!(DRIVERS as readonly string[]).includes(driver)) throw new UsageError(`--driver: unknown driver ${JSON.stringify(driver)}; available: ${DRIVERS.join(', ')}`);
  if (driver !== 'fake' && flags.driver !== undefined) {
    const problems = crunProblems();
    if (problems.length > 0) throw new UsageError(`hangar up --driver ${driver}: this host cannot run containers: ${problems.join('; ')}. Run \`hangar host setup\` (as root), or use \`--driver fake\``);
  }

  const say = (line: string) => process.stdout.write(`${line}\n`);
  const logger = createLogger({ component: 'api' });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const agentDir = join(dataDir, 'agent');
  mkdirSync(agentDir, { recursive: true, mode: 0o700 });
  const agentTokenFile = join(agentDir, 'agent-token');
  if (!existsSync(agentTokenFile)) writeFileSync(agentTokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  const agentToken = readFileSync(agentTokenFile, 'utf8').trim();

  say(`hangar: data directory ${dataDir}`);
  const store = new SqliteStore(join(dataDir, 'hangar.db'));
  await store.migrate();
  const { adminToken, created } = await bootstrap(store, dataDir);
  if (created) say('hangar: first start: created organization "personal" and an admin token');

  const agentUrl = `http://${agentListen.host}:${agentListen.port}`;
  const agent = supervise('agent', [
    MAIN_JS, 'agent', '--data-dir', agentDir, '--listen', `${agentListen.host}:${agentListen.port}`,
    '--region', region, '--driver', driver, '--token-file', agentTokenFile,
    '--stop-machines-on-exit',
    ...(flags['allow-egress'] ? ['--allow-egress'] : []),
  ]);

  const server = createApiServer({ store, region, logger, agents: [{ url: agentUrl, token: agentToken }], ...apiListen });
  let url: string;
  try {
    ({ url } = await server.start());
    await server.agentsReady(30_000);
  } catch (err) {
    await agent.stop();
    await server.close().catch(() => undefined);
    throw err;
  }
  const configDir = process.env.HANGAR_CONFIG_DIR ?? join(homedir(), '.hangar');
  writeCliConfig(configDir, { api_url: url, token: adminToken });
  say(`hangar: API server ${url} (Fly Machines API under /v1), region ${region}, driver ${driver}`);
  say(`hangar: agent ${agentUrl}; CLI configured in ${join(configDir, 'config.json')} (\`hangar auth token\` prints the token)`);
  let proxy: Awaited<ReturnType<typeof startUpProxy>> | undefined;
  if (!flags['no-proxy']) {
    try {
      proxy = await startUpProxy({ apiUrl: url, region, listen: flags['proxy-listen'], httpsListen: flags['https-listen'], domain: flags['app-domain'], threads: proxyThreads, dataDir });
    } catch (err) {
      await server.close().catch(() => undefined);
      await agent.stop();
      throw err;
    }
    say(`hangar: proxy ${proxy.url}${proxy.httpsUrl ? ` and ${proxy.httpsUrl}` : ''} routes <app>.${proxy.domain} to apps (metrics ${proxy.metricsUrl})`);
  }
  say('hangar: up. Press Ctrl-C to stop.');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // A second Ctrl-C while shutting down means "now": take the agent down hard rather than orphan it.
  const forceQuit = () => {
    process.stderr.write('hangar: forced exit\n');
    agent.kill();
    proxy?.kill();
    process.exit(130);
  };
  process.once('SIGINT', forceQuit);
  process.once('SIGTERM', forceQuit);
  say('hangar: shutting down ...');
  await proxy?.stop();
  await server.close();
  await agent.stop();
  say('hangar: stopped');
  return 0;
}

/**
 * crun when this host can run containers (as `hangar host check` would say). On a first run as root
 * the host is prepared first (`hangar host setup`, each step printed); otherwise a clear way out.
 */
async function defaultDriver(): Promise<string> {
  let problems = crunProblems();
  if (problems.length === 0) return 'crun';
  if (process.getuid?.() === 0) {
    process.stdout.write(`hangar: this host is not ready to run containers (${problems.join('; ')}); running \`hangar host setup\` first\n`);
    await setupHost(HOST_REQUIREMENTS, realProbes, realExecutor(), (line) => process.stdout.write(`${line}\n`));
    problems = crunProblems();
    if (problems.length === 0) return 'crun';
  }
  throw new UsageError(
    `hangar up: machines run as crun containers by default, but this host is not ready: ${problems.join('; ')}. ` +
      'Run `hangar host setup` as root to prepare it, or run `hangar up --driver fake` for an API whose machines only pretend to run',
  );
}

/** The benches launch `hangar up` as `bin/hangar` does, from the same constants. */
export { SERVER_MALLOC_ENV, SERVER_V8_FLAGS, serverProcessEnv } from './server-process.js';

/**
 * Runs a server role (`hangar agent`, `hangar proxy`) as a child process, restarting it with backoff
 * if it dies on its own. With `onLine`, its stdout is read line by line (to notice it is ready);
 * otherwise it writes to ours. `firstExit` settles if it exits before `stop` or `kill` was asked;
 * with `fatalUntil`, an exit before that promise settles is not restarted (it never came up).
 */
function supervise(name: string, args: string[], options: { onLine?: (line: string) => void; fatalUntil?: Promise<unknown> } = {}): {
  stop(): Promise<void>; kill(): void; firstExit: Promise<string>;
} {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let exitedOnce: (how: string) => void = () => {};
  const firstExit = new Promise<string>((resolve) => (exitedOnce = resolve));
  // Until `fatalUntil` settles (the child said it is ready), an exit is a failure to start: no restart.
  let restartable = options.fatalUntil === undefined;
  void options.fatalUntil?.then(() => (restartable = true), () => undefined);
  const launch = () => {
    const startedAt = Date.now();
    // Children get the same V8 flags and malloc settings as this process had from `bin/hangar`,
    // also when `hangar up` itself was started some other way.
    child = spawn(process.execPath, ['--enable-source-maps', ...SERVER_V8_FLAGS, ...args], {
      stdio: ['ignore', options.onLine ? 'pipe' : 'inherit', 'inherit'], env: serverProcessEnv(process.env),
    });
    if (options.onLine && child.stdout) {
      const onLine = options.onLine;
      createInterface({ input: child.stdout }).on('line', onLine);
    }
    child.on('exit', (code, signal) => {
      if (stopping) return;
      const how = signal ?? `code ${code}`;
      exitedOnce(how);
      if (!restartable) return;
      restarts = Date.now() - startedAt > 30_000 ? 0 : restarts + 1;
      const delay = Math.min(100 * 2 ** restarts, 5_000);
      process.stderr.write(`hangar: ${name} exited (${how}); restarting in ${delay} ms\n`);
      setTimeout(() => stopping || launch(), delay);
    });
  };
  launch();
  return {
    firstExit,
    kill: () => {
      stopping = true;
      child?.kill('SIGKILL');
    },
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child?.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
