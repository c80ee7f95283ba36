/**
 * Machines API read throughput: GET one machine and list an app's machines, with 1,000 machines on
 * the fake driver, driven by wrk against a real `hangar up` (separate process). Reference measured
 * in the same run: a bare node:http server answering the same machine JSON, which is the floor any
 * Node HTTP API pays; the ratio is what Hangar's routing, auth, store and rendering cost on top.
 *
 * Run: `npm run build && node dist/bench/api-throughput.js` (needs wrk: `apt-get install wrk`).
 * Writes bench/results/api-throughput.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HangarClient } from '../src/client/client.js';
import { repoRoot } from '../src/testkit/paths.js';
import { SERVER_V8_FLAGS, serverProcessEnv } from '../src/up/up.js';
import { freeLoopbackPort as freePort } from '../src/testkit/registry.js';

const MACHINES = Number(process.env.BENCH_MACHINES ?? 1000);
const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 32;
const CREATE_CONCURRENCY = 16;

interface WrkResult {
  requests_per_s: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  errors: number;
}


function runWrk(url: string, script: string, connections: number, seconds: number): WrkResult {
  const out = spawnSync('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr || out.stdout}`);
  const text = out.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const toMs = (v: string, unit: string) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(text);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { requests_per_s: Math.round(rps), latency_p50_ms: pct('50'), latency_p99_ms: pct('99'), errors };
}

function wrkScript(dir: string, name: string, token: string, paths: string[]): string {
  const file = join(dir, `${name}.lua`);
  const list = paths.map((p) => `"${p}"`).join(',\n');
  writeFileSync(
    file,
    `local paths = {\n${list}\n}\nlocal i = 0\nwrk.headers["Authorization"] = "Bearer ${token}"\n` +
      `request = function()\n  i = i % #paths + 1\n  return wrk.format("GET", paths[i])\nend\n`,
  );
  return file;
}

async function startHangar(dir: string): Promise<{ child: ChildProcess; url: string; token: string }> {
  const apiPort = await freePort();
  const agentPort = await freePort();
  const dataDir = join(dir, 'data');
  const child = spawn(
    process.execPath,
    // As `bin/hangar up` runs it (same V8 flags and malloc settings); the proxy is left out, this measures the API.
    [...SERVER_V8_FLAGS, join(repoRoot(), 'dist/src/main.js'), 'up', '--driver', 'fake', '--no-proxy', '--data-dir', dataDir,
      '--api-listen', `127.0.0.1:${apiPort}`, '--agent-listen', `127.0.0.1:${agentPort}`],
    { env: { ...serverProcessEnv(process.env), HANGAR_CONFIG_DIR: join(dir, 'cli') }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('hangar up did not come up within 60 s')), 60_000);
    let seen = '';
    child.stdout!.on('data', (chunk) => {
      seen += chunk.toString();
      if (seen.includes('hangar: up.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`hangar up exited with ${code}: ${seen}`)));
  });
  return { child, url: `http://127.0.0.1:${apiPort}`, token: readFileSync(join(dataDir, 'admin-token'), 'utf8').trim() };
}

/**
 * The reference: node:http answering the same bytes for every request, no routing or storage. It
 * runs in its own process, like Hangar, because wrk is run synchronously from this one.
 */
async function startReference(dir: string, body: string): Promise<{ child: ChildProcess; url: string }> {
  const bodyFile = join(dir, 'reference-body.json');
  writeFileSync(bodyFile, body);
  const port = await freePort();
  const code = `
    const body = require('node:fs').readFileSync(${JSON.stringify(bodyFile)});
    require('node:http').createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, 'fly-request-id': '01jreference' });
      res.end(body);
    }).listen(${port}, '127.0.0.1', () => process.stdout.write('ready\\n'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return { child, url: `http://127.0.0.1:${port}` };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hangar-bench-'));
  const { child, url, token } = await startHangar(dir);
  try {
    const client = new HangarClient({ baseUrl: url, token, timeoutMs: 60_000 });
    await client.apps.create({ name: 'bench', org_slug: 'personal' });
    const ids: string[] = [];
    const createStart = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        while (next < MACHINES) {
          next++;
          const m = await client.machines.create('bench', { config: { image: 'registry.example.test/bench:1', metadata: { n: String(ids.length) } } });
          ids.push(m.id);
        }
      }),
    );
    const createSeconds = (performance.now() - createStart) / 1000;

    const getScript = wrkScript(dir, 'get', token, ids.map((id) => `/v1/apps/bench/machines/${id}`));
    const get = runWrk(url, getScript, CONNECTIONS, DURATION_S);
    const listSummaryScript = wrkScript(dir, 'list-summary', token, ['/v1/apps/bench/machines?summary=true']);
    const listSummary = runWrk(url, listSummaryScript, 8, DURATION_S);
    const listFullScript = wrkScript(dir, 'list-full', token, ['/v1/apps/bench/machines']);
    const listFull = runWrk(url, listFullScript, 8, DURATION_S);

    const sample = await (await fetch(`${url}/v1/apps/bench/machines/${ids[0]}`, { headers: { authorization: `Bearer ${token}` } })).text();
    const reference = await startReference(dir, sample);
    const refScript = wrkScript(dir, 'ref', token, ['/v1/apps/bench/machines/x']);
    const ref = runWrk(reference.url, refScript, CONNECTIONS, DURATION_S);
    reference.child.kill();

    const results = {
      benchmark: 'api-throughput',
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      setup: { machines: MACHINES, driver: 'fake', duration_s: DURATION_S, wrk_connections: CONNECTIONS, wrk_threads: 2 },
      create: { machines: MACHINES, seconds: Number(createSeconds.toFixed(2)), per_second: Math.round(MACHINES / createSeconds) },
      get_machine: get,
      list_summary_1000: listSummary,
      list_full_1000: listFull,
      reference_node_http_same_body: ref,
      ratios: { get_vs_reference: Number((get.requests_per_s / ref.requests_per_s).toFixed(3)) },
      target: { get_per_s: 5000, met: get.requests_per_s >= 5000 },
    };
    mkdirSync(join(repoRoot(), 'bench', 'results'), { recursive: true });
    writeFileSync(join(repoRoot(), 'bench', 'results', 'api-throughput.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.log(JSON.stringify(results, null, 2));
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
