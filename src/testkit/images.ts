/**
 * Tiny OCI images for tests, built in pure Node with no internet and no Docker: a layer holding the
 * host's static busybox (`/bin/busybox`, Debian's busybox-static) plus applet symlinks, optional
 * extra files and layers, an image config and a manifest, written as an OCI image layout
 * (`oci-layout`, `index.json`, `blobs/sha256/…`). Layouts can be turned into an OCI archive or a
 * docker-archive tarball for `hangar image import` tests, or pushed to `startRegistry()`.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, mkdtempSync, rmSync, createReadStream, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { createTar, writeTarFile, type TarEntry } from './tar.js';

export const BUSYBOX_PATH = '/bin/busybox';

/** Applets linked into `/bin` of every busybox image (all exist in Debian's busybox-static 1.35). */
export const DEFAULT_APPLETS = [
  'sh', 'ash', 'httpd', 'echo', 'sleep', 'cat', 'ls', 'ps', 'env', 'hostname', 'ip', 'ifconfig', 'route',
  'wget', 'nc', 'nslookup', 'mkdir', 'rm', 'rmdir', 'touch', 'true', 'false', 'kill', 'id', 'pwd', 'printf',
  'test', '[', 'grep', 'sed', 'awk', 'head', 'tail', 'wc', 'date', 'uname', 'tr', 'seq', 'dd', 'cp', 'mv', 'ln',
  'chmod', 'chown', 'stat', 'du', 'df', 'find', 'xargs', 'sort', 'uniq', 'cut', 'basename', 'dirname',
  'readlink', 'yes', 'timeout', 'tee', 'base64', 'sha256sum', 'md5sum', 'mount', 'umount', 'uptime', 'free',
  'top', 'whoami', 'which', 'vi', 'tar', 'gzip', 'gunzip', 'nproc', 'sync', 'usleep', 'hexdump', 'od', 'less',
  'more', 'watch', 'pidof', 'killall', 'netstat', 'ping', 'traceroute', 'setsid', 'nohup', 'mkfifo', 'expr',
];

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export type FileSpec =
  | string
  | Buffer
  | { data: string | Buffer; mode?: number; uid?: number; gid?: number }
  | { symlink: string }
  | { hardlink: string }
  | { dir: true; mode?: number };

export interface LayerSpec {
  /** Paths (relative to `/`) → contents. Parent directories are added automatically. */
  files?: Record<string, FileSpec>;
  /** Paths to delete from the layers below (written as `.wh.` whiteout files). */
  whiteouts?: string[];
  /** Directories whose lower content is hidden (opaque whiteouts). */
  opaque?: string[];
  /** Raw tar entries appended as given. */
  entries?: TarEntry[];
  /** gzip level (default 6; 1 is much faster for large incompressible layers). */
  gzipLevel?: number;
}

export interface BuildImageOptions {
  /** The OCI layout directory; created if missing. Several images (tags) may share one layout. */
  dir: string;
  /** `org.opencontainers.image.ref.name` of the manifest in index.json (default `latest`). */
  tag?: string;
  cmd?: string[];
  entrypoint?: string[];
  /** `KEY=value` strings or a map; PATH is set unless given. */
  env?: string[] | Record<string, string>;
  workingDir?: string;
  user?: string;
  /** `8080`, `8080/tcp`, `53/udp`. */
  exposedPorts?: (number | string)[];
  labels?: Record<string, string>;
  /** Extra files in the busybox layer. */
  files?: Record<string, FileSpec>;
  /** Further layers on top of the busybox layer, in order. */
  layers?: LayerSpec[];
  /** Applets to link (default `DEFAULT_APPLETS`). */
  applets?: string[];
  /** Leave out the busybox layer entirely (then `layers` is the whole image). */
  noBusybox?: boolean;
  architecture?: string;
}

export interface LayerInfo {
  digest: string; // of the gzip'd blob
  diffId: string; // of the uncompressed tar
  size: number;
  mediaType: string;
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  layers: LayerInfo[];
  config: ImageConfig;
  manifest: Record<string, unknown>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  created: string;
  config: {
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    User?: string;
    ExposedPorts?: Record<string, object>;
    Labels?: Record<string, string>;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: { created: string; created_by: string }[];
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CREATED = '2000-01-01T00:00:00Z';

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function goArch(arch: string = process.arch): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

function writeBlob(layoutDir: string, data: Buffer | string): { digest: string; size: number } {
  const digest = sha256(data);
  const path = blobPath(layoutDir, digest);
  if (!existsSync(path)) writeFileSync(path, data);
  return { digest, size: Buffer.byteLength(data) };
}

/** Tar entries for a files map, with parent directories first (each directory once). */
export function filesToEntries(files: Record<string, FileSpec>, seenDirs = new Set<string>()): TarEntry[] {
  const entries: TarEntry[] = [];
  const addParents = (path: string) => {
    const parts = path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (dir && !seenDirs.has(dir)) {
        seenDirs.add(dir);
        entries.push({ type: 'dir', path: dir, mode: dir === 'tmp' ? 0o1777 : 0o755 });
      }
    }
  };
  for (const [rawPath, spec] of Object.entries(files)) {
    const path = rawPath.replace(/^\/+/, '').replace(/\/+$/, '');
    addParents(path);
    if (typeof spec === 'string' || Buffer.isBuffer(spec)) entries.push({ type: 'file', path, data: spec, mode: 0o644 });
    else if ('symlink' in spec) entries.push({ type: 'symlink', path, target: spec.symlink });
    else if ('hardlink' in spec) entries.push({ type: 'link', path, target: spec.hardlink });
    else if ('dir' in spec) {
      if (!seenDirs.has(path)) entries.push({ type: 'dir', path, mode: spec.mode ?? 0o755 });
      seenDirs.add(path);
    } else entries.push({ type: 'file', path, data: spec.data, mode: spec.mode ?? 0o644, uid: spec.uid ?? 0, gid: spec.gid ?? 0 });
  }
  return entries;
}

const busyboxLayerCache = new Map<string, { tar: Buffer; gz: Buffer }>();

/** The busybox layer's tar entries: base directories, /etc files, /bin/busybox and applet links. */
export function busyboxEntries(applets: string[] = DEFAULT_APPLETS, extra: Record<string, FileSpec> = {}): TarEntry[] {
  if (!existsSync(BUSYBOX_PATH)) {
    throw new Error(`${BUSYBOX_PATH} is missing: install Debian's busybox-static (hangar host setup does)`);
  }
  const seen = new Set<string>();
  const entries: TarEntry[] = [];
  for (const [dir, mode] of [['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['proc', 0o555], ['root', 0o700], ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755], ['usr/bin', 0o755], ['var', 0o755], ['run', 0o755]] as const) {
    seen.add(dir);
    entries.push({ type: 'dir', path: dir, mode });
  }
  entries.push({ type: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX_PATH), mode: 0o755 });
  for (const applet of applets) entries.push({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  entries.push(
    { type: 'file', path: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    { type: 'file', path: 'etc/group', data: 'root:x:0:\nnogroup:x:65534:\n' },
  );
  entries.push(...filesToEntries(extra, seen));
  return entries;
}

function layerBlobs(entries: TarEntry[], gzipLevel = 6): { tar: Buffer; gz: Buffer } {
  const tar = createTar(entries);
  return { tar, gz: gzipSync(tar, { level: gzipLevel }) };
}

function normalizeEnv(env: BuildImageOptions['env']): string[] {
  const list = Array.isArray(env) ? [...env] : Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`);
  if (!list.some((e) => e.startsWith('PATH='))) list.unshift(DEFAULT_PATH);
  return list;
}

function readIndex(layoutDir: string): { schemaVersion: 2; mediaType?: string; manifests: Record<string, unknown>[] } {
  const path = join(layoutDir, 'index.json');
  if (!existsSync(path)) return { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] };
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * Builds a busybox image into the OCI layout `dir` under `tag` (replacing an earlier manifest with
 * the same tag). Deterministic: the same options give the same digests.
 */
export function buildBusyboxImage(options: BuildImageOptions): BuiltImage {
  const layoutDir = options.dir;
  const tag = options.tag ?? 'latest';
  mkdirSync(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const layers: LayerInfo[] = [];
  const history: ImageConfig['history'] = [];
  const addLayer = (blobs: { tar: Buffer; gz: Buffer }, createdBy: string) => {
    const { digest, size } = writeBlob(layoutDir, blobs.gz);
    layers.push({ digest, size, diffId: sha256(blobs.tar), mediaType: MEDIA_TYPES.layerGzip });
    history.push({ created: CREATED, created_by: createdBy });
  };

  if (!options.noBusybox) {
    const applets = options.applets ?? DEFAULT_APPLETS;
    const useCache = !options.files;
    const key = applets.join(',');
    let blobs = useCache ? busyboxLayerCache.get(key) : undefined;
    if (!blobs) {
      blobs = layerBlobs(busyboxEntries(applets, options.files ?? {}));
      if (useCache) busyboxLayerCache.set(key, blobs);
    }
    addLayer(blobs, 'hangar testkit: busybox-static');
  }
  for (const [i, layer] of (options.layers ?? []).entries()) {
    const entries: TarEntry[] = [];
    for (const dir of layer.opaque ?? []) entries.push({ type: 'file', path: `${dir.replace(/^\/+|\/+$/g, '')}/.wh..wh..opq`, data: '' });
    for (const path of layer.whiteouts ?? []) {
      const clean = path.replace(/^\/+|\/+$/g, '');
      const slash = clean.lastIndexOf('/');
      entries.push({ type: 'file', path: `${clean.slice(0, slash + 1)}.wh.${clean.slice(slash + 1)}`, data: '' });
    }
    entries.push(...filesToEntries(layer.files ?? {}), ...(layer.entries ?? []));
    addLayer(layerBlobs(entries, layer.gzipLevel), `hangar testkit: layer ${i + 1}`);
  }

  const imageConfig: ImageConfig['config'] = { Env: normalizeEnv(options.env) };
  if (options.entrypoint) imageConfig.Entrypoint = options.entrypoint;
  imageConfig.Cmd = options.cmd ?? (options.entrypoint ? undefined : ['/bin/sh']);
  if (imageConfig.Cmd === undefined) delete imageConfig.Cmd;
  if (options.workingDir) imageConfig.WorkingDir = options.workingDir;
  if (options.user) imageConfig.User = options.user;
  if (options.exposedPorts?.length) {
    imageConfig.ExposedPorts = Object.fromEntries(options.exposedPorts.map((p) => [typeof p === 'number' || !p.includes('/') ? `${p}/tcp` : p, {}]));
  }
  if (options.labels) imageConfig.Labels = options.labels;
  const config: ImageConfig = {
    architecture: options.architecture ?? goArch(),
    os: 'linux',
    created: CREATED,
    config: imageConfig,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  };
  const configBlob = writeBlob(layoutDir, JSON.stringify(config));
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBlob = writeBlob(layoutDir, JSON.stringify(manifest));

  const index = readIndex(layoutDir);
  index.manifests = index.manifests.filter((m) => (m.annotations as Record<string, string> | undefined)?.[REF_NAME_ANNOTATION] !== tag);
  index.manifests.push({
    mediaType: MEDIA_TYPES.manifest,
    digest: manifestBlob.digest,
    size: manifestBlob.size,
    platform: { architecture: config.architecture, os: 'linux' },
    annotations: { [REF_NAME_ANNOTATION]: tag },
  });
  writeFileSync(join(layoutDir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: index.manifests }));

  return { layoutDir, tag, manifestDigest: manifestBlob.digest, manifestSize: manifestBlob.size, configDigest: configBlob.digest, layers, config, manifest };
}

/**
 * A busybox image with one extra layer of `sizeMB` MiB of random (incompressible) bytes at
 * `/data/random.bin`, for pull benchmarks. Each call makes different data unless `seed` repeats.
 */
export function buildBigImage(options: Omit<BuildImageOptions, 'layers'> & { sizeMB: number; seed?: string }): BuiltImage {
  const size = Math.round(options.sizeMB * 1024 * 1024);
  let data: Buffer;
  if (options.seed === undefined) data = randomBytes(size);
  else {
    // Deterministic "random" bytes: a SHA-256 counter stream (incompressible all the same).
    data = Buffer.alloc(size);
    for (let offset = 0, n = 0; offset < size; n++) {
      const block = createHash('sha256').update(`${options.seed}:${n}`).digest();
      offset += block.copy(data, offset);
    }
  }
  return buildBusyboxImage({ ...options, layers: [{ files: { 'data/random.bin': data }, gzipLevel: 1 }] });
}

/** The manifest of `tag` (or the layout's only manifest) in an OCI layout. */
export function readLayoutManifest(layoutDir: string, tag?: string): { digest: string; manifest: { config: { digest: string }; layers: { digest: string; mediaType: string; size: number }[] } } {
  const index = readIndex(layoutDir);
  const entry = tag === undefined && index.manifests.length === 1
    ? index.manifests[0]
    : index.manifests.find((m) => (m.annotations as Record<string, string> | undefined)?.[REF_NAME_ANNOTATION] === (tag ?? 'latest'));
  if (!entry) throw new Error(`no manifest tagged ${JSON.stringify(tag ?? 'latest')} in ${layoutDir}`);
  const digest = entry.digest as string;
  return { digest, manifest: JSON.parse(readFileSync(blobPath(layoutDir, digest), 'utf8')) };
}

/** The layout as an OCI archive (a tar of oci-layout, index.json and blobs/), as `docker save`'s newer form and `skopeo copy oci-archive:` expect. */
export async function writeOciArchive(layoutDir: string, file: string): Promise<void> {
  const index = readIndex(layoutDir);
  const blobs = new Set<string>();
  for (const entry of index.manifests) {
    const digest = entry.digest as string;
    blobs.add(digest);
    const manifest = JSON.parse(readFileSync(blobPath(layoutDir, digest), 'utf8'));
    blobs.add(manifest.config.digest);
    for (const layer of manifest.layers) blobs.add(layer.digest);
  }
  await writeTarFile(file, [
    { type: 'file', path: 'oci-layout', data: readFileSync(join(layoutDir, 'oci-layout')) },
    { type: 'file', path: 'index.json', data: JSON.stringify(index) },
    { type: 'dir', path: 'blobs' },
    { type: 'dir', path: 'blobs/sha256' },
    ...[...blobs].sort().map((digest) => {
      const source = blobPath(layoutDir, digest);
      return { type: 'file' as const, path: `blobs/sha256/${digest.slice('sha256:'.length)}`, source, size: statSync(source).size };
    }),
  ]);
}

/**
 * The image `tag` of a layout as a docker-archive (`docker save` classic format): `manifest.json`,
 * the config as `<hex>.json`, each layer uncompressed as `<diffId hex>/layer.tar`, and
 * `repositories`. `repoTags` defaults to `[\`hangar-test:${tag}\`]`.
 */
export async function writeDockerArchive(layoutDir: string, file: string, options: { tag?: string; repoTags?: string[] } = {}): Promise<void> {
  const { manifest } = readLayoutManifest(layoutDir, options.tag);
  const configHex = manifest.config.digest.slice('sha256:'.length);
  const config = JSON.parse(readFileSync(blobPath(layoutDir, manifest.config.digest), 'utf8')) as ImageConfig;
  const repoTags = options.repoTags ?? [`hangar-test:${options.tag ?? 'latest'}`];
  const work = mkdtempSync(join(tmpdir(), 'hangar-docker-archive-'));
  try {
    const layerFiles: { path: string; source: string; size: number }[] = [];
    for (const [i, layer] of manifest.layers.entries()) {
      const diffHex = (config.rootfs.diff_ids[i] ?? sha256(String(i))).slice('sha256:'.length);
      const source = join(work, `${diffHex}.tar`);
      const input = createReadStream(blobPath(layoutDir, layer.digest));
      await (layer.mediaType.endsWith('gzip') ? pipeline(input, createGunzip(), createWriteStream(source)) : pipeline(input, createWriteStream(source)));
      layerFiles.push({ path: `${diffHex}/layer.tar`, source, size: statSync(source).size });
    }
    const dockerManifest = [{ Config: `${configHex}.json`, RepoTags: repoTags, Layers: layerFiles.map((l) => l.path) }];
    const repositories: Record<string, Record<string, string>> = {};
    const topLayer = layerFiles.at(-1)?.path.split('/')[0];
    for (const repoTag of repoTags) {
      const colon = repoTag.lastIndexOf(':');
      const [repo, t] = colon > repoTag.lastIndexOf('/') ? [repoTag.slice(0, colon), repoTag.slice(colon + 1)] : [repoTag, 'latest'];
      if (topLayer) (repositories[repo] ??= {})[t] = topLayer;
    }
    await writeTarFile(file, [
      ...layerFiles.flatMap((l) => [{ type: 'dir' as const, path: l.path.split('/')[0]! }, { type: 'file' as const, ...l }]),
      { type: 'file', path: `${configHex}.json`, data: readFileSync(blobPath(layoutDir, manifest.config.digest)) },
      { type: 'file', path: 'manifest.json', data: JSON.stringify(dockerManifest) },
      { type: 'file', path: 'repositories', data: JSON.stringify(repositories) },
    ]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
