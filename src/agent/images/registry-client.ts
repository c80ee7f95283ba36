/**
 * A small OCI distribution (v2) client on `fetch`: manifests with content negotiation, blobs
 * streamed to disk with sha256 verification, anonymous bearer tokens and optional basic
 * credentials. HTTPS by default; plain HTTP for loopback registries and the ones listed as
 * insecure. Every failure is a `HangarError` naming the image, the registry and the fix.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HangarError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { MANIFEST_ACCEPT, parseManifest, sha256Digest, type Descriptor, type ParsedManifest } from './oci.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  logger: Logger;
  /** Registries (`host` or `host:port`) reached over plain HTTP. Loopback always is. */
  insecureRegistries?: string[];
  /** Basic credentials per registry host (`host` or `host:port`), used for tokens and Basic auth. */
  credentials?: Record<string, RegistryCredentials>;
  /** A manifest request (headers and body) must finish within this; default 30 s. */
  manifestTimeoutMs?: number;
  /** A blob download fails when no byte arrives for this long; default 60 s. */
  stallTimeoutMs?: number;
}

/** Which repository on which registry; `image` is what the user wrote, for messages. */
export interface RepoTarget {
  registry: string;
  repository: string;
  image: string;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  parsed: ParsedManifest;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/;

export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  private readonly options: RegistryClientOptions;

  constructor(options: RegistryClientOptions) {
    this.options = options;
  }

  /** `http` for loopback and insecure registries, else `https`. */
  schemeFor(registry: string): 'http' | 'https' {
    if (LOOPBACK.test(registry)) return 'http';
    const insecure = this.options.insecureRegistries ?? [];
    return insecure.includes(registry) || insecure.includes(registry.replace(/:\d+$/, '')) ? 'http' : 'https';
  }

  private baseUrl(registry: string): string {
    return `${this.schemeFor(registry)}://${registry}/v2/`;
  }

  /** GETs a manifest by tag or digest; verifies the digest when `reference` is one. */
  async getManifest(target: RepoTarget, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const url = `${this.baseUrl(target.registry)}${target.repository}/manifests/${reference}`;
    const timeout = AbortSignal.timeout(this.options.manifestTimeoutMs ?? 30_000);
    const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const res = await this.request(target, url, { Accept: MANIFEST_ACCEPT }, sig);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new HangarError('not_found',
        `image ${target.image} not found: registry ${target.registry} has no manifest ${target.repository}:${reference} (HTTP 404); ` +
        'check the repository name and tag, push the image, or load it with `hangar image import`');
    }
    if (res.status !== 200) throw await this.statusError(target, res, `manifest ${reference}`);
    let bytes: Buffer;
    try {
      bytes = await readLimited(res, MAX_MANIFEST_BYTES);
    } catch (err) {
      throw this.transportError(target, err, sig);
    }
    const contentType = res.headers.get('content-type') ?? undefined;
    const parsed = parseManifest(bytes, contentType);
    if (parsed === 'schema1') {
      throw new HangarError('invalid_argument',
        `image ${target.image} on registry ${target.registry} uses Docker manifest schema 1, which Hangar does not pull; ` +
        're-push it with a current Docker, buildah or skopeo (schema 2 / OCI)');
    }
    if (!parsed) {
      throw new HangarError('unavailable',
        `registry ${target.registry} answered something that is not an image manifest for ${target.image} ` +
        `(content-type ${JSON.stringify(contentType ?? '')}, ${bytes.length} bytes); check that ${target.registry} is an OCI/Docker registry ` +
        'and that the image name is right');
    }
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new HangarError('unavailable',
        `registry ${target.registry} answered manifest ${digest} for ${target.image} when asked for ${reference}; ` +
        'the registry or a proxy in between is corrupting data; retry, or re-push the image');
    }
    return { bytes, digest, parsed };
  }

  /**
   * Streams a blob into `dest` through a temp file in `tmpDir` (same filesystem), checking size
   * and sha256 on the way; renames only after both match, so `dest` is complete or absent.
   */
  async fetchBlob(target: RepoTarget, desc: Descriptor, dest: string, tmpDir: string, signal?: AbortSignal): Promise<void> {
    const url = `${this.baseUrl(target.registry)}${target.repository}/blobs/${desc.digest}`;
    const stall = new AbortController();
    const sig = signal ? AbortSignal.any([signal, stall.signal]) : stall.signal;
    const stallMs = this.options.stallTimeoutMs ?? 60_000;
    let timer = setTimeout(() => stall.abort(new Error(`no data for ${stallMs} ms`)), stallMs);
    const bump = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stall.abort(new Error(`no data for ${stallMs} ms`)), stallMs);
    };
    const tmp = join(tmpDir, `blob-${desc.digest.slice(7, 19)}-${randomBytes(6).toString('hex')}`);
    try {
      const res = await this.request(target, url, {}, sig);
      if (res.status !== 200) {
        if (res.status === 404) {
          await res.body?.cancel();
          throw new HangarError('unavailable',
            `registry ${target.registry} lists blob ${desc.digest} in image ${target.image} but does not have it (HTTP 404); ` +
            'the image was pushed incompletely; re-push it');
        }
        throw await this.statusError(target, res, `blob ${desc.digest}`);
      }
      if (!res.body) throw new HangarError('unavailable', `registry ${target.registry} sent an empty body for blob ${desc.digest} of ${target.image}; retry`);
      const hash = createHash('sha256');
      let size = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          bump();
          size += chunk.length;
          if (size > desc.size) {
            cb(new BlobMismatch(`more than the ${desc.size} bytes the manifest declares`));
            return;
          }
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), meter, createWriteStream(tmp), { signal: sig });
      } catch (err) {
        if (err instanceof BlobMismatch) throw this.corrupt(target, desc, err.message);
        throw this.transportError(target, err, sig);
      }
      const got = `sha256:${hash.digest('hex')}`;
      if (size !== desc.size) throw this.corrupt(target, desc, `${size} bytes instead of ${desc.size}`);
      if (got !== desc.digest) throw this.corrupt(target, desc, `content hashes to ${got}`);
      await rename(tmp, dest);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private corrupt(target: RepoTarget, desc: Descriptor, detail: string): HangarError {
    return new HangarError('unavailable',
      `blob ${desc.digest} of image ${target.image} from registry ${target.registry} is corrupt (${detail}); ` +
      'the download was discarded; retry, and re-push the image if it keeps failing');
  }

  /** One GET with auth: retries once after a 401 with a bearer token or basic credentials. */
  private async request(target: RepoTarget, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const scopeKey = `${target.registry}/${target.repository}`;
    const auth = this.tokens.get(scopeKey);
    let res = await this.send(target, url, auth ? { ...headers, Authorization: auth } : headers, signal);
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate') ?? '';
    await res.body?.cancel();
    const header = await this.authorize(target, challenge, signal);
    this.tokens.set(scopeKey, header);
    res = await this.send(target, url, { ...headers, Authorization: header }, signal);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.denied(target, res.status);
    }
    return res;
  }

  private async send(target: RepoTarget, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    try {
      return await fetch(url, { headers: { 'User-Agent': 'hangar', ...headers }, signal, redirect: 'follow' });
    } catch (err) {
      throw this.transportError(target, err, signal);
    }
  }

  private async authorize(target: RepoTarget, challenge: string, signal: AbortSignal): Promise<string> {
    const all = this.options.credentials ?? {};
    const creds = all[target.registry] ??
      (target.registry === 'registry-1.docker.io' ? all['docker.io'] ?? all['index.docker.io'] : undefined);
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    const scheme = challenge.split(' ', 1)[0]!.toLowerCase();
    if (scheme === 'basic') {
      if (!basic) throw this.denied(target, 401);
      return basic;
    }
    if (scheme !== 'bearer') throw this.denied(target, 401);
    const params = parseChallenge(challenge.slice(challenge.indexOf(' ') + 1));
    const realm = params['realm'];
    if (!realm) {
      throw new HangarError('unavailable', `registry ${target.registry} asked for a bearer token without a realm while pulling ${target.image}; it is misconfigured`);
    }
    const tokenUrl = new URL(realm);
    if (params['service']) tokenUrl.searchParams.set('service', params['service']);
    tokenUrl.searchParams.set('scope', params['scope'] ?? `repository:${target.repository}:pull`);
    const res = await this.send(target, tokenUrl.toString(), basic ? { Authorization: basic } : {}, signal);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.denied(target, res.status);
    }
    if (res.status !== 200) throw await this.statusError(target, res, 'token');
    let body: { token?: string; access_token?: string };
    try {
      body = JSON.parse((await readLimited(res, 1024 * 1024)).toString('utf8')) as typeof body;
    } catch (err) {
      throw new HangarError('unavailable', `token server ${tokenUrl.host} of registry ${target.registry} answered with something that is not JSON; retry later`, { cause: err });
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new HangarError('unavailable', `token server ${tokenUrl.host} of registry ${target.registry} answered without a token; retry later`);
    return `Bearer ${token}`;
  }

  private denied(target: RepoTarget, status: number): HangarError {
    return new HangarError('invalid_argument',
      `registry ${target.registry} refused to serve ${target.image} (HTTP ${status}): the repository ${target.repository} does not exist ` +
      'or is private; check the name, or give the agent credentials for this registry');
  }

  private async statusError(target: RepoTarget, res: Response, what: string): Promise<HangarError> {
    let text = '';
    try {
      text = (await readLimited(res, 2048)).toString('utf8').replace(/\s+/g, ' ').slice(0, 200);
    } catch {
      // the status is enough
    }
    return new HangarError('unavailable',
      `registry ${target.registry} answered HTTP ${res.status} for ${what} of ${target.image}${text ? `: ${text}` : ''}; retry later`);
  }

  private transportError(target: RepoTarget, err: unknown, signal: AbortSignal): unknown {
    if (err instanceof HangarError) return err;
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      if (reason instanceof Error && reason.name === 'TimeoutError') {
        return new HangarError('unavailable', `registry ${target.registry} did not answer in time for ${target.image}; check the registry and retry`, { cause: err });
      }
      if (reason instanceof Error && reason.message.startsWith('no data for')) {
        return new HangarError('unavailable', `download of ${target.image} from registry ${target.registry} stalled (${reason.message}); retry`, { cause: err });
      }
      return reason ?? err;
    }
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
    const hint = this.schemeFor(target.registry) === 'https'
      ? `check that the registry is up and reachable over HTTPS (list it in insecureRegistries if it only speaks plain HTTP)`
      : 'check that the registry is running and listening';
    return new HangarError('unavailable', `cannot reach registry ${target.registry} to pull ${target.image} (${detail}); ${hint}`, { cause: err });
  }
}

class BlobMismatch extends Error {}

/** Parses `realm="...",service="...",scope="..."`. */
export function parseChallenge(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  return out;
}

async function readLimited(res: Response, limit: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await res.body?.cancel();
    return Buffer.alloc(0);
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > limit) break;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** True when `path` exists as a file. */
export async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
