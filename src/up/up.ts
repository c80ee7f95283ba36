/**
 * `hangar up`: the whole platform on this host, in the foreground. The API server runs in this
 * process on the embedded SQLite store; the agent runs as a child process (so a server restart never
 * takes running machines down with it) and is restarted if it dies. Ctrl-C / SIGTERM stops both.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crunProblems } from '../agent/drivers/crun/prerequisites.js';
import { realExecutor, realProbes } from '../host/probes.js';
import { HOST_REQUIREMENTS } from '../host/requirements.js';
import { setupHost } from '../host/runner.js';
import { writeCliConfig } from '../cli/config.js';
import { createLogger } from '../core/logger.js';
import { bootstrap } from '../server/bootstrap.js';
import { createApiServer } from '../server/create-server.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { SERVER_V8_FLAGS, serverProcessEnv } from './server-process.js';
import {
  DEFAULT_AGENT_LISTEN, DEFAULT_API_LISTEN, DEFAULT_REGION, defaultDataDir, parseListen, parseRegion, parseRoleArgs, UsageError,
} from './role-options.js';

const DRIVERS = ['crun', 'runc', 'fake'] as const;

async function startUpProxy(o: { apiUrl: string; token: string; region: string; listen: string | undefined; domain: string | undefined; dataDir: string }) {
  const { createProxy } = await import('../proxy/create-proxy.js');
  const { DEFAULT_APP_DOMAIN, DEFAULT_PROXY_LISTEN } = await import('../proxy/main.js');
  const domain = o.domain ?? DEFAULT_APP_DOMAIN;
  const listen = parseListen('proxy-listen', o.listen ?? DEFAULT_PROXY_LISTEN);
  const proxy = createProxy({
    apiUrl: o.apiUrl, token: o.token, region: o.region, domain, listen, logger: createLogger({ component: 'proxy' }),
    metricsListen: { host: '127.0.0.1', port: 0 }, certDir: join(o.dataDir, 'proxy-certs'),
  });
  const running = await proxy.start();
  return { url: running.url, domain, metricsUrl: running.metricsUrl, close: () => proxy.close() };
}
const MAIN_JS = fileURLToPath(new URL('../main.js', import.meta.url));

export async function runUp(args: string[]): Promise<number> {
  const flags = parseRoleArgs('up', args, {
    'data-dir': { type: 'string' },
    'api-listen': { type: 'string' },
    'agent-listen': { type: 'string' },
    'proxy-listen': { type: 'string' },
    'app-domain': { type: 'string' },
    'no-proxy': { type: 'boolean' },
    region: { type: 'string' },
    driver: { type: 'string' },
    'allow-egress': { type: 'boolean' },
  });
  const dataDir = flags['data-dir'] ?? defaultDataDir();
  const apiListen = parseListen('api-listen', flags['api-listen'] ?? DEFAULT_API_LISTEN);
  const agentListen = parseListen('agent-listen', flags['agent-listen'] ?? DEFAULT_AGENT_LISTEN);
  const region = parseRegion(flags.region ?? DEFAULT_REGION);
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
  const agent = superviseAgent([
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
  // The edge proxy runs in this process too and follows the API's route stream like any other.
  let proxy: Awaited<ReturnType<typeof startUpProxy>> | undefined;
  if (!flags['no-proxy']) {
    proxy = await startUpProxy({ apiUrl: url, token: adminToken, region, listen: flags['proxy-listen'], domain: flags['app-domain'], dataDir });
    say(`hangar: proxy ${proxy.url} routes <app>.${proxy.domain} to apps (metrics ${proxy.metricsUrl})`);
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
    process.exit(130);
  };
  process.once('SIGINT', forceQuit);
  process.once('SIGTERM', forceQuit);
  say('hangar: shutting down ...');
  await proxy?.close();
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

/** Runs the agent as a child process, restarting it (with backoff) if it dies on its own. */
function superviseAgent(args: string[]): { stop(): Promise<void>; kill(): void } {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  const launch = () => {
    const startedAt = Date.now();
    // The agent gets the same V8 flags and malloc settings as this process had from `bin/hangar`,
    // also when `hangar up` itself was started some other way.
    child = spawn(process.execPath, ['--enable-source-maps', ...SERVER_V8_FLAGS, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'], env: serverProcessEnv(process.env),
    });
    child.on('exit', (code, signal) => {
      if (stopping) return;
      restarts = Date.now() - startedAt > 30_000 ? 0 : restarts + 1;
      const delay = Math.min(100 * 2 ** restarts, 5_000);
      process.stderr.write(`hangar: agent exited (${signal ?? `code ${code}`}); restarting in ${delay} ms\n`);
      setTimeout(() => stopping || launch(), delay);
    });
  };
  launch();
  return {
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
