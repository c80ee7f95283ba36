/**
 * The host's image store: one OCI image layout (`<dir>/oci`) holding every blob once, keyed by
 * sha256, and one read-only unpacked rootfs per image digest (`<dir>/rootfs/<hex>/rootfs`) that
 * machines share as the lower layer of their overlay (see `overlay.ts`).
 *
 * `index.json` carries two kinds of refs, both pointing at an OCI manifest in the layout:
 * - a digest ref named `sha256-<hex>` for every stored image (what `umoci` unpacks);
 * - a name ref per normalized image name (`docker.io/library/nginx:latest`, `host:5000/app@sha256:…`),
 *   so a name seen once resolves again without the network.
 * Annotations `io.hangar.image.*` record the image digest (the registry's manifest digest, which
 * differs from the stored manifest's digest when a Docker schema-2 manifest was rewritten to OCI)
 * and whether the image was pulled or imported.
 *
 * Writes are crash-safe: blobs land under their digest only after verification (temp file +
 * rename), rootfs directories are unpacked in `<dir>/tmp` and renamed into place, and
 * `index.json` is replaced atomically. Leftovers in `<dir>/tmp` are removed on start.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageRef } from '../../api-types/machine.js';
import { HangarError } from '../../core/errors.js';
import { parseImageRef } from '../../core/image-ref.js';
import type { Logger } from '../../core/logger.js';
import { run } from './exec.js';
import {
  MEDIA, digestHex, isSha256Digest, ociLayerMediaType, parseManifest, sha256Digest, toOciManifestBytes,
  type Descriptor, type ImageConfigBlob, type ImageManifest, type ImageRuntimeConfig,
} from './oci.js';
import { RegistryClient, type RegistryCredentials, type RepoTarget } from './registry-client.js';

export interface ResolvedImage {
  /** What the machine config said, normalized (`docker.io/library/nginx:latest`). */
  name: string;
  /** Image (manifest) digest, `sha256:…`: the linux/amd64 manifest as the registry serves it. */
  digest: string;
  imageRef: ImageRef;
  config: ImageRuntimeConfig;
  /** Unpacked once, shared, never written by machines. */
  rootfsDir: string;
}

export interface ImageStoreOptions {
  dir: string;
  logger: Logger;
  /** Registries (`host` or `host:port`) reached over plain HTTP. Loopback registries always are. */
  insecureRegistries?: string[];
  /** Basic credentials per registry host. */
  credentials?: Record<string, RegistryCredentials>;
  /** Parallel blob downloads per pull; default 4. */
  concurrency?: number;
  /** Passed to the registry client (tests shorten them). */
  manifestTimeoutMs?: number;
  stallTimeoutMs?: number;
}

export interface GcOptions {
  /** Names (as given to `resolve`) to keep even when no machine uses them. Imported names are always kept. */
  keepNames?: string[];
  /**
   * When set, imported names are no longer always kept: one stored at least this long ago (or with
   * no recorded time) goes like a pulled one when no in-use digest or kept name holds it.
   */
  importGraceMs?: number;
}

type Source = 'pull' | 'import';

const A_REF = 'org.opencontainers.image.ref.name';
const A_DIGEST = 'io.hangar.image.digest';
const A_SOURCE = 'io.hangar.image.source';
const A_KIND = 'io.hangar.image.kind';
const A_STORED = 'io.hangar.image.stored-at';

interface LayoutIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  waiters: number;
}

const REPO_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** Parses and validates an image reference; throws `invalid_argument` naming the problem. */
export function normalizeImage(image: string): { name: string; ref: ImageRef } {
  const ref = parseImageRef(image);
  const problem =
    !image.trim() ? 'it is empty' :
    !REPO_RE.test(ref.repository) ? `repository "${ref.repository}" must be lowercase letters, digits and . _ - separated by /` :
    ref.tag && !TAG_RE.test(ref.tag) ? `tag "${ref.tag}" may only hold letters, digits, _ . - (at most 128)` :
    ref.digest && !isSha256Digest(ref.digest) ? `digest "${ref.digest}" must be sha256: followed by 64 lowercase hex digits` :
    undefined;
  if (problem) throw new HangarError('invalid_argument', `image reference ${JSON.stringify(image)} is invalid: ${problem}`);
  const host = ref.registry === 'registry-1.docker.io' ? 'docker.io' : ref.registry;
  const name = `${host}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  return { name, ref };
}

export class ImageStore {
  readonly dir: string;
  private readonly layoutDir: string;
  private readonly blobDir: string;
  private readonly rootfsRoot: string;
  private readonly tmpDir: string;
  private readonly logger: Logger;
  private readonly client: RegistryClient;
  private readonly concurrency: number;
  private initPromise: Promise<void> | undefined;
  private index: LayoutIndex = { schemaVersion: 2, manifests: [] };
  private indexWrite: Promise<void> = Promise.resolve();
  private readonly resolveFlights = new Map<string, Flight<ResolvedImage>>();
  private readonly unpackFlights = new Map<string, Promise<string>>();
  private readonly blobFlights = new Map<string, Promise<void>>();
  private readonly configCache = new Map<string, ImageConfigBlob>();
  // gc runs alone: operations count themselves in `active`, gc waits for zero and holds `gate`.
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private gate: Promise<void> | undefined;

  constructor(options: ImageStoreOptions) {
    this.dir = options.dir;
    this.layoutDir = join(options.dir, 'oci');
    this.blobDir = join(this.layoutDir, 'blobs', 'sha256');
    this.rootfsRoot = join(options.dir, 'rootfs');
    this.tmpDir = join(options.dir, 'tmp');
    this.logger = options.logger;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.client = new RegistryClient({
      logger: options.logger,
      insecureRegistries: options.insecureRegistries ?? [],
      credentials: options.credentials ?? {},
      ...(options.manifestTimeoutMs !== undefined ? { manifestTimeoutMs: options.manifestTimeoutMs } : {}),
      ...(options.stallTimeoutMs !== undefined ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
    });
  }

  /** The OCI image layout every image lives in (`umoci … --image <layoutDir>:sha256-<hex>`). */
  get layoutPath(): string {
    return this.layoutDir;
  }

  /** A locally known name (imported or pulled before) wins; otherwise pulls and unpacks it. */
  async resolve(image: string, options: { signal?: AbortSignal } = {}): Promise<ResolvedImage> {
    const { name, ref } = normalizeImage(image);
    await this.init();
    return this.joinFlight(name, options.signal, (signal) => this.shared(() => this.resolveNow(image, name, ref, signal)));
  }

  /** Loads an oci-archive (OCI layout tar) or docker-archive tarball; `name` defaults to the archive's own. */
  async import(file: string, name?: string): Promise<ResolvedImage> {
    await this.init();
    return this.shared(() => this.importNow(file, name));
  }

  /** Names, digests and sources of everything stored (for `hangar image list`). */
  async list(): Promise<{ name: string; digest: string; source: Source; stored_at?: string }[]> {
    await this.init();
    return this.index.manifests
      .filter((d) => d.annotations?.[A_KIND] === 'name')
      .map((d) => ({
        name: d.annotations![A_REF]!, digest: d.annotations![A_DIGEST]!, source: d.annotations![A_SOURCE] as Source,
        ...(d.annotations![A_STORED] ? { stored_at: d.annotations![A_STORED] } : {}),
      }));
  }

  /**
   * Removes pulled names whose digest no machine uses, then every blob and unpacked rootfs not
   * reachable from an in-use digest, an imported name or a kept name, and leftovers in tmp.
   * Waits for running pulls and imports, and holds new ones until it is done.
   */
  async gc(inUseDigests: Set<string>, options: GcOptions = {}): Promise<{ removed: string[] }> {
    await this.init();
    const keepNames = new Set((options.keepNames ?? []).map((n) => normalizeImage(n).name));
    return this.exclusive(async () => {
      const removed: string[] = [];
      const keptDigests = new Set<string>();
      for (const d of this.index.manifests) {
        const a = d.annotations ?? {};
        if (a[A_KIND] !== 'name') continue;
        const digest = a[A_DIGEST]!;
        const importKept = a[A_SOURCE] === 'import' &&
          (options.importGraceMs === undefined || Date.now() - Date.parse(a[A_STORED] ?? '') < options.importGraceMs);
        if (importKept || keepNames.has(a[A_REF]!) || inUseDigests.has(digest)) keptDigests.add(digest);
      }
      for (const digest of inUseDigests) keptDigests.add(digest);
      await this.mutateIndex((idx) => {
        idx.manifests = idx.manifests.filter((d) => {
          const keep = keptDigests.has(d.annotations?.[A_DIGEST] ?? '');
          if (!keep) removed.push(`${d.annotations?.[A_KIND] === 'name' ? 'name' : 'image'} ${d.annotations?.[A_REF] ?? d.digest}`);
          return keep;
        });
      });
      const reachable = new Set<string>();
      for (const d of this.index.manifests) {
        reachable.add(d.digest);
        const manifest = await this.readManifest(d.digest).catch(() => undefined);
        if (!manifest) continue;
        reachable.add(manifest.config.digest);
        for (const l of manifest.layers) reachable.add(l.digest);
      }
      for (const hex of await readdir(this.blobDir).catch(() => [] as string[])) {
        if (reachable.has(`sha256:${hex}`)) continue;
        await rm(join(this.blobDir, hex), { force: true });
        this.configCache.delete(`sha256:${hex}`);
        removed.push(`blob sha256:${hex}`);
      }
      for (const hex of await readdir(this.rootfsRoot).catch(() => [] as string[])) {
        if (keptDigests.has(`sha256:${hex}`)) continue;
        await rm(join(this.rootfsRoot, hex), { recursive: true, force: true });
        removed.push(`rootfs sha256:${hex}`);
      }
      for (const entry of await readdir(this.tmpDir).catch(() => [] as string[])) {
        await rm(join(this.tmpDir, entry), { recursive: true, force: true });
        removed.push(`tmp ${entry}`);
      }
      if (removed.length) this.logger.info('image gc', { removed: removed.length });
      return { removed };
    });
  }

  // ---- resolve / pull ----

  private async resolveNow(image: string, name: string, ref: ImageRef, signal: AbortSignal): Promise<ResolvedImage> {
    const local = this.findName(name) ?? (ref.digest ? this.findDigest(ref.digest) : undefined);
    if (local) {
      const digest = local.annotations![A_DIGEST]!;
      if (await this.hasImageBlobs(local.digest)) return this.finish(name, ref, digest);
      if (local.annotations![A_SOURCE] === 'import') {
        throw new HangarError('failed_precondition',
          `image ${name} was imported but its blobs are missing from ${this.layoutDir}; import it again with \`hangar image import\``);
      }
      this.logger.warn('stored image incomplete, pulling again', { image: name });
    }
    const digest = await this.pull(image, name, ref, signal);
    return this.finish(name, ref, digest);
  }

  private async finish(name: string, ref: ImageRef, digest: string): Promise<ResolvedImage> {
    const entry = this.findDigest(digest);
    if (!entry) throw new HangarError('unknown', `image ${name} (${digest}) vanished from the store while resolving it; retry`);
    const rootfsDir = await this.ensureUnpacked(name, digest, entry.digest);
    const config = await this.readConfig(entry.digest);
    const runtime = config.config ?? {};
    return {
      name,
      digest,
      imageRef: { registry: ref.registry, repository: ref.repository, tag: ref.tag, digest, labels: { ...(runtime.Labels ?? {}) } },
      config: runtime,
      rootfsDir,
    };
  }

  /** Pulls the linux/amd64 image into the layout; returns its image digest. */
  private async pull(image: string, name: string, ref: ImageRef, signal: AbortSignal): Promise<string> {
    const target: RepoTarget = { registry: ref.registry, repository: ref.repository, image };
    const started = Date.now();
    let fetched = await this.client.getManifest(target, ref.digest || ref.tag, signal);
    if (fetched.parsed.kind === 'index') {
      const platforms = fetched.parsed.index.manifests.filter((m) => m.platform);
      const pick = platforms.find((m) => m.platform!.os === 'linux' && m.platform!.architecture === 'amd64');
      if (!pick) {
        const have = platforms.map((m) => `${m.platform!.os}/${m.platform!.architecture}${m.platform!.variant ? `/${m.platform!.variant}` : ''}`);
        throw new HangarError('invalid_argument',
          `image ${image} on registry ${ref.registry} has no linux/amd64 variant (it has: ${have.join(', ') || 'no platform entries'}); ` +
          'build and push an amd64 image (docker buildx build --platform linux/amd64)');
      }
      fetched = await this.client.getManifest(target, pick.digest, signal);
      if (fetched.parsed.kind !== 'manifest') {
        throw new HangarError('unavailable',
          `registry ${ref.registry} answered something that is not an image manifest for the linux/amd64 entry of ${image} (a nested index); re-push the image`);
      }
    }
    const { manifest, mediaType } = fetched.parsed;
    this.checkImageManifest(image, manifest, ref.registry);
    const existing = this.findDigest(fetched.digest);
    if (!existing || !(await this.hasImageBlobs(existing.digest))) {
      await mkdir(this.tmpDir, { recursive: true });
      await this.fetchAll(target, [manifest.config], signal);
      this.checkPlatform(image, await this.readConfig(manifest.config.digest, image));
      await this.fetchAll(target, manifest.layers, signal);
      const ociBytes = toOciManifestBytes(fetched.bytes, manifest, mediaType);
      const ociDigest = sha256Digest(ociBytes);
      await this.writeBlob(ociDigest, ociBytes);
      await this.putRef({ digest: ociDigest, size: ociBytes.length }, fetched.digest, 'pull');
    }
    await this.putName(name, fetched.digest, 'pull');
    this.logger.info('image pulled', { image: name, digest: fetched.digest, ms: Date.now() - started });
    return fetched.digest;
  }

  private checkImageManifest(image: string, manifest: ImageManifest, where: string): void {
    if (manifest.config.mediaType !== MEDIA.ociConfig && manifest.config.mediaType !== MEDIA.dockerConfig) {
      throw new HangarError('invalid_argument',
        `${image} from ${where} is not a container image (its config is ${manifest.config.mediaType}); point the machine at a container image`);
    }
    for (const layer of manifest.layers) {
      if (!ociLayerMediaType(layer.mediaType)) {
        throw new HangarError('invalid_argument',
          `image ${image} from ${where} has a layer of type ${layer.mediaType}, which Hangar cannot unpack (umoci 0.4.7 reads tar and tar+gzip); ` +
          'rebuild it with gzip layers (the default of docker, buildah and skopeo)');
      }
    }
  }

  private checkPlatform(image: string, config: ImageConfigBlob): void {
    const os = config.os ?? 'linux';
    const arch = config.architecture ?? 'amd64';
    if (os !== 'linux' || arch !== 'amd64') {
      throw new HangarError('invalid_argument', `image ${image} is built for ${os}/${arch}; Hangar runs linux/amd64 images; rebuild it for linux/amd64`);
    }
  }

  /** Downloads the blobs not yet stored, `concurrency` at a time; one download per digest per host. */
  private async fetchAll(target: RepoTarget, descs: Descriptor[], signal: AbortSignal): Promise<void> {
    const queue = [...new Map(descs.map((d) => [d.digest, d])).values()];
    let failed: unknown;
    const worker = async () => {
      for (let d = queue.shift(); d && failed === undefined; d = queue.shift()) {
        try {
          await this.fetchBlobOnce(target, d, signal);
        } catch (err) {
          failed ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
    if (failed !== undefined) throw failed;
  }

  private async fetchBlobOnce(target: RepoTarget, desc: Descriptor, signal: AbortSignal): Promise<void> {
    const dest = join(this.blobDir, digestHex(desc.digest));
    if (existsSync(dest)) return;
    let flight = this.blobFlights.get(desc.digest);
    if (!flight) {
      flight = this.client.fetchBlob(target, desc, dest, this.tmpDir, signal).finally(() => this.blobFlights.delete(desc.digest));
      this.blobFlights.set(desc.digest, flight);
    }
    await flight;
  }

  // ---- import ----

  private async importNow(file: string, name: string | undefined): Promise<ResolvedImage> {
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new HangarError('invalid_argument', `image archive ${file} does not exist or is not a file; check the path`);
    const listing = await run('tar', ['-tf', file]);
    if (listing.code !== 0) {
      throw new HangarError('invalid_argument', `${file} is not a tar archive (${listing.stderr}); export the image with \`docker save\`, \`podman save\` or \`skopeo copy … oci-archive:FILE\``);
    }
    const entries = new Map(listing.stdout.toString('utf8').split('\n').filter(Boolean).map((e) => [e.replace(/^\.\//, ''), e]));
    const format = entries.has('oci-layout') ? 'oci-archive' : entries.has('manifest.json') ? 'docker-archive' : undefined;
    if (!format) {
      throw new HangarError('invalid_argument',
        `${file} is neither an OCI layout archive (no oci-layout file) nor a docker-archive (no manifest.json); ` +
        'export the image with `docker save`, `podman save` or `skopeo copy … oci-archive:FILE`');
    }
    const readMember = async (member: string): Promise<unknown> => {
      const out = await run('tar', ['-xOf', file, entries.get(member)!], { maxStdout: 4 * 1024 * 1024 });
      try {
        return JSON.parse(out.stdout.toString('utf8'));
      } catch {
        throw new HangarError('invalid_argument', `${member} in ${file} is not valid JSON; the archive is damaged, export it again`);
      }
    };
    let ownName: string | undefined;
    let sourceRef: string;
    if (format === 'docker-archive') {
      const manifest = (await readMember('manifest.json')) as { RepoTags?: string[] | null }[];
      if (!Array.isArray(manifest) || manifest.length === 0) throw new HangarError('invalid_argument', `${file}: manifest.json lists no image; export it again`);
      ownName = manifest[0]!.RepoTags?.[0];
      sourceRef = manifest.length > 1 ? `docker-archive:${file}:@0` : `docker-archive:${file}`;
    } else {
      const index = (await readMember('index.json')) as { manifests?: Descriptor[] };
      const first = index.manifests?.[0];
      if (!first) throw new HangarError('invalid_argument', `${file}: index.json lists no image; export it again`);
      ownName = first.annotations?.[A_REF];
      sourceRef = (index.manifests?.length ?? 0) > 1 && ownName ? `oci-archive:${file}:${ownName}` : `oci-archive:${file}`;
    }
    const given = name ?? ownName;
    if (!given) throw new HangarError('invalid_argument', `image archive ${file} carries no image name; give one: hangar image import ${file} NAME`);
    const { name: normalized, ref } = normalizeImage(given);

    await mkdir(this.tmpDir, { recursive: true });
    const work = await mkdtemp(join(this.tmpDir, 'import-'));
    try {
      const layout = join(work, 'layout');
      const copied = await run('skopeo', ['--insecure-policy', 'copy', '--quiet', sourceRef, `oci:${layout}:img`]);
      if (copied.code !== 0) {
        throw new HangarError('invalid_argument', `cannot read image archive ${file} (${format}): ${copied.stderr || `skopeo exited ${copied.code}`}; export it again`);
      }
      const idx = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as LayoutIndex;
      const desc = idx.manifests[0]!;
      const srcBlobs = join(layout, 'blobs', 'sha256');
      const manifestBytes = await readFile(join(srcBlobs, digestHex(desc.digest)));
      const parsed = parseManifest(manifestBytes, desc.mediaType);
      if (!parsed || parsed === 'schema1' || parsed.kind !== 'manifest') {
        throw new HangarError('invalid_argument', `image archive ${file} does not hold a single image manifest; export one linux/amd64 image`);
      }
      this.checkImageManifest(normalized, parsed.manifest, file);
      const ociBytes = toOciManifestBytes(manifestBytes, parsed.manifest, parsed.mediaType);
      const ociDigest = sha256Digest(ociBytes);
      await mkdir(this.blobDir, { recursive: true });
      for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) {
        const dest = join(this.blobDir, digestHex(d.digest));
        if (!existsSync(dest)) await rename(join(srcBlobs, digestHex(d.digest)), dest);
      }
      this.checkPlatform(normalized, await this.readConfig(parsed.manifest.config.digest, normalized));
      await this.writeBlob(ociDigest, ociBytes);
      await this.putRef({ digest: ociDigest, size: ociBytes.length }, ociDigest, 'import');
      await this.putName(normalized, ociDigest, 'import');
      this.logger.info('image imported', { image: normalized, digest: ociDigest, file });
      return await this.finish(normalized, ref, ociDigest);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  // ---- unpack ----

  /** Unpacks the image once per digest into `<dir>/rootfs/<hex>/rootfs` (temp dir + rename). */
  private ensureUnpacked(name: string, digest: string, manifestDigest: string): Promise<string> {
    const finalDir = join(this.rootfsRoot, digestHex(digest));
    const rootfs = join(finalDir, 'rootfs');
    if (existsSync(rootfs)) return Promise.resolve(rootfs);
    let flight = this.unpackFlights.get(digest);
    if (!flight) {
      flight = this.unpack(name, digest, manifestDigest, finalDir).finally(() => this.unpackFlights.delete(digest));
      this.unpackFlights.set(digest, flight);
    }
    return flight;
  }

  private async unpack(name: string, digest: string, _manifestDigest: string, finalDir: string): Promise<string> {
    const started = Date.now();
    await mkdir(this.rootfsRoot, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    const work = await mkdtemp(join(this.tmpDir, `unpack-${digestHex(digest).slice(0, 12)}-`));
    try {
      const args = ['raw', 'unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${this.layoutDir}:${digestRefName(digest)}`, join(work, 'rootfs')];
      const res = await run('umoci', args).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new HangarError('failed_precondition', 'umoci is not installed on this host; run `hangar host setup`');
        throw err;
      });
      if (res.code !== 0) {
        throw new HangarError('unknown', `cannot unpack image ${name} (${digest}): umoci: ${res.stderr.split('\n').slice(-3).join(' ')}; check free space in ${this.dir}`);
      }
      try {
        await rename(work, finalDir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
      }
      this.logger.info('image unpacked', { image: name, digest, ms: Date.now() - started });
      return join(finalDir, 'rootfs');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  // ---- layout ----

  private init(): Promise<void> {
    this.initPromise ??= (async () => {
      await mkdir(this.blobDir, { recursive: true });
      await mkdir(this.rootfsRoot, { recursive: true });
      await rm(this.tmpDir, { recursive: true, force: true });
      await mkdir(this.tmpDir, { recursive: true });
      const layoutFile = join(this.layoutDir, 'oci-layout');
      if (!existsSync(layoutFile)) await writeFile(layoutFile, '{"imageLayoutVersion":"1.0.0"}');
      try {
        this.index = JSON.parse(await readFile(join(this.layoutDir, 'index.json'), 'utf8')) as LayoutIndex;
        if (!Array.isArray(this.index.manifests)) throw new Error('no manifests array');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.logger.warn('image index unreadable, starting empty', { dir: this.layoutDir, error: String(err) });
        }
        this.index = { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] };
        await this.mutateIndex(() => {});
      }
    })();
    return this.initPromise.catch((err: unknown) => {
      this.initPromise = undefined;
      throw new HangarError('failed_precondition', `cannot prepare the image store in ${this.dir}: ${String(err)}; check that the directory is writable`, { cause: err });
    });
  }

  private findName(name: string): Descriptor | undefined {
    return this.index.manifests.find((d) => d.annotations?.[A_KIND] === 'name' && d.annotations[A_REF] === name);
  }

  private findDigest(digest: string): Descriptor | undefined {
    return this.index.manifests.find((d) => d.annotations?.[A_KIND] === 'digest' && d.annotations[A_DIGEST] === digest);
  }

  private async putRef(manifest: { digest: string; size: number }, imageDigest: string, source: Source): Promise<void> {
    await this.mutateIndex((idx) => {
      idx.manifests = idx.manifests.filter((d) => !(d.annotations?.[A_KIND] === 'digest' && d.annotations[A_DIGEST] === imageDigest));
      idx.manifests.push({
        mediaType: MEDIA.ociManifest, digest: manifest.digest, size: manifest.size,
        annotations: { [A_REF]: digestRefName(imageDigest), [A_DIGEST]: imageDigest, [A_SOURCE]: source, [A_KIND]: 'digest' },
      });
    });
  }

  private async putName(name: string, imageDigest: string, source: Source): Promise<void> {
    await this.mutateIndex((idx) => {
      const target = idx.manifests.find((d) => d.annotations?.[A_KIND] === 'digest' && d.annotations[A_DIGEST] === imageDigest);
      if (!target) throw new HangarError('unknown', `image ${name}: digest ${imageDigest} missing from the index; retry`);
      idx.manifests = idx.manifests.filter((d) => !(d.annotations?.[A_KIND] === 'name' && d.annotations[A_REF] === name));
      idx.manifests.push({
        mediaType: MEDIA.ociManifest, digest: target.digest, size: target.size,
        annotations: { [A_REF]: name, [A_DIGEST]: imageDigest, [A_SOURCE]: source, [A_KIND]: 'name', [A_STORED]: new Date().toISOString() },
      });
    });
  }

  /** Applies `fn` to a copy of the index and replaces index.json atomically; serialized. */
  private mutateIndex(fn: (idx: LayoutIndex) => void): Promise<void> {
    const next = this.indexWrite.then(async () => {
      const copy = structuredClone(this.index);
      fn(copy);
      const tmp = join(this.layoutDir, `.index.json.${randomBytes(4).toString('hex')}`);
      await writeFile(tmp, JSON.stringify(copy));
      await rename(tmp, join(this.layoutDir, 'index.json'));
      this.index = copy;
    });
    this.indexWrite = next.catch(() => {});
    return next;
  }

  private async writeBlob(digest: string, bytes: Buffer): Promise<void> {
    const dest = join(this.blobDir, digestHex(digest));
    if (existsSync(dest)) return;
    const tmp = join(this.tmpDir, `blob-${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, bytes);
    await rename(tmp, dest);
  }

  private async readManifest(digest: string): Promise<ImageManifest> {
    const bytes = await readFile(join(this.blobDir, digestHex(digest)));
    const parsed = parseManifest(bytes, MEDIA.ociManifest);
    if (!parsed || parsed === 'schema1' || parsed.kind !== 'manifest') throw new Error(`blob ${digest} is not an image manifest`);
    return parsed.manifest;
  }

  private async hasImageBlobs(manifestDigest: string): Promise<boolean> {
    try {
      const m = await this.readManifest(manifestDigest);
      return [m.config, ...m.layers].every((d) => existsSync(join(this.blobDir, digestHex(d.digest))));
    } catch {
      return false;
    }
  }

  private async readConfig(digestOrManifest: string, image?: string): Promise<ImageConfigBlob> {
    let configDigest = digestOrManifest;
    if (!image) configDigest = (await this.readManifest(digestOrManifest)).config.digest;
    const cached = this.configCache.get(configDigest);
    if (cached) return cached;
    let config: ImageConfigBlob;
    try {
      config = JSON.parse(await readFile(join(this.blobDir, digestHex(configDigest)), 'utf8')) as ImageConfigBlob;
      if (!config || typeof config !== 'object') throw new Error('not an object');
    } catch (err) {
      throw new HangarError('invalid_argument', `the config blob ${configDigest} of image ${image ?? digestOrManifest} is not valid JSON; re-push or re-export the image`, { cause: err });
    }
    this.configCache.set(configDigest, config);
    return config;
  }

  // ---- concurrency ----

  /** Joins the in-flight resolve of `key`; the shared work is aborted only when every waiter gave up. */
  private joinFlight<T extends ResolvedImage>(key: string, signal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    let flight = this.resolveFlights.get(key) as Flight<T> | undefined;
    if (!flight) {
      const controller = new AbortController();
      const created: Flight<T> = { controller, waiters: 0, promise: undefined as unknown as Promise<T> };
      created.promise = work(controller.signal).finally(() => {
        if (this.resolveFlights.get(key) === (created as unknown as Flight<ResolvedImage>)) this.resolveFlights.delete(key);
      });
      this.resolveFlights.set(key, created as unknown as Flight<ResolvedImage>);
      flight = created;
    }
    const f = flight;
    f.waiters++;
    if (!signal) return f.promise.finally(() => f.waiters--);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        f.waiters--;
        if (f.waiters === 0) f.controller.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      f.promise.then(
        (v) => { signal.removeEventListener('abort', onAbort); if (!signal.aborted) { f.waiters--; resolve(v); } },
        (e: unknown) => { signal.removeEventListener('abort', onAbort); if (!signal.aborted) { f.waiters--; reject(e); } },
      );
    });
  }

  private async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let release!: () => void;
    this.gate = new Promise((r) => (release = r));
    try {
      if (this.active > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
      return await fn();
    } finally {
      this.gate = undefined;
      release();
    }
  }
}

/** The ref name under which `umoci` finds an image digest in the layout. */
export function digestRefName(digest: string): string {
  return `sha256-${digestHex(digest)}`;
}

export { mountMachineRootfs, unmountMachineRootfs } from './overlay.js';
