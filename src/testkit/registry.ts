/**
 * A real OCI registry for tests: Debian's `docker-registry` (CNCF Distribution 2.8) serving plain
 * HTTP on a free loopback port, storing blobs in a temp directory. `push()` copies an image from an
 * OCI layout (see `images.ts`) with `skopeo copy`. `close()` stops the process and removes what it
 * created.
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REF_NAME_ANNOTATION } from './images.js';

export interface TestRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, the registry part of image names (`127.0.0.1:PORT/repo:tag`). */
  host: string;
  /** Directory the registry stores its data in. */
  storageDir: string;
  /**
   * Pushes the image of an OCI layout to `repo:tag` (or `repo@…`-less `repo`, meaning `:latest`).
   * The layout's manifest is the one tagged `from`, else the one tagged like `ref`, else its only
   * manifest. Resolves to the pushed manifest digest.
   */
  push(layoutDir: string, ref: string, options?: { from?: string }): Promise<string>;
  close(): Promise<void>;
}

/** Host tools the registry fixture needs; tests skip with this list when any is missing. */
export const REGISTRY_TOOLS = ['docker-registry', 'skopeo'];

export function missingTools(tools: string[]): string[] {
  return tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0);
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || stdout.trim()}`));
    });
  });
}

function layoutSourceTag(layoutDir: string, refTag: string, from?: string): string | undefined {
  if (from !== undefined) return from;
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  const tags = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]);
  if (tags.includes(refTag)) return refTag;
  if (index.manifests.length === 1) return tags[0];
  throw new Error(`${layoutDir} holds ${index.manifests.length} images (${tags.join(', ')}) and none is tagged ${refTag}; pass { from: TAG }`);
}

async function waitForRegistry(url: string, child: ChildProcess, stderr: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.signalCode ?? child.exitCode}) before answering: ${stderr().trim().slice(-2000)}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`docker-registry did not answer ${url}/v2/ within ${timeoutMs} ms: ${stderr().trim().slice(-2000)}`);
}

/**
 * Starts `docker-registry serve` on a free 127.0.0.1 port. Data lives in `dir` (a new temp
 * directory when omitted, removed by `close()`).
 */
export async function startRegistry(options: { dir?: string; timeoutMs?: number } = {}): Promise<TestRegistry> {
  const missing = missingTools(REGISTRY_TOOLS);
  if (missing.length > 0) throw new Error(`startRegistry needs ${missing.join(', ')}: run \`hangar host setup\` (installs docker-registry and skopeo)`);
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'hangar-registry-'));
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir, { recursive: true });

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeLoopbackPort();
    const host = `127.0.0.1:${port}`;
    const url = `http://${host}`;
    const configFile = join(dir, 'registry.yml');
    writeFileSync(
      configFile,
      [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storageDir}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${host}`,
        '',
      ].join('\n'),
    );
    const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    child.on('error', (err) => (stderr += `\n${err.message}`));
    // If the test process dies without close(), don't leave the registry behind.
    const onExit = () => child.kill('SIGKILL');
    process.once('exit', onExit);
    try {
      await waitForRegistry(url, child, () => stderr, options.timeoutMs ?? 15_000);
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
      process.removeListener('exit', onExit);
      continue; // probably lost the port to someone else: try another
    }

    let closed = false;
    return {
      url,
      host,
      storageDir,
      async push(layoutDir, ref, pushOptions = {}) {
        const colon = ref.lastIndexOf(':');
        const [repo, tag] = colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
        const from = layoutSourceTag(layoutDir, tag, pushOptions.from);
        const digestFile = join(dir, `digest-${process.hrtime.bigint()}`);
        await run('skopeo', [
          'copy', '--quiet', '--dest-tls-verify=false', '--digestfile', digestFile,
          from === undefined ? `oci:${layoutDir}` : `oci:${layoutDir}:${from}`,
          `docker://${host}/${repo}:${tag}`,
        ], 120_000);
        const digest = readFileSync(digestFile, 'utf8').trim();
        rmSync(digestFile, { force: true });
        return digest;
      },
      async close() {
        if (closed) return;
        closed = true;
        process.removeListener('exit', onExit);
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        if (ownDir) rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
