/**
 * OCI and Docker image JSON shapes, media types and small digest helpers shared by the registry
 * client and the image store. Only the fields Hangar reads are typed.
 * @module
 */
import { createHash } from 'node:crypto';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** What the registry client asks for, best first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
  urls?: string[];
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The part of the image config a machine needs (the OCI config's `config` object). */
export interface ImageRuntimeConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ImageConfigBlob {
  architecture?: string;
  os?: string;
  config?: ImageRuntimeConfig;
  rootfs?: { type: string; diff_ids: string[] };
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isSha256Digest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function digestHex(digest: string): string {
  return digest.slice('sha256:'.length);
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

/**
 * Classifies manifest bytes. Returns `undefined` for anything that is not a schema-2 index or
 * manifest (garbage, HTML, schema 1 — the caller says which in its error).
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest | 'schema1' | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return undefined;
  const obj = json as Record<string, unknown>;
  if (obj['schemaVersion'] === 1) return 'schema1';
  if (obj['schemaVersion'] !== 2) return undefined;
  const declared = typeof obj['mediaType'] === 'string' ? obj['mediaType'] : (contentType ?? '').split(';')[0]!.trim();
  if (Array.isArray(obj['manifests'])) {
    if (!obj['manifests'].every(isDescriptor)) return undefined;
    return { kind: 'index', mediaType: declared === MEDIA.dockerList ? MEDIA.dockerList : MEDIA.ociIndex, index: obj as unknown as ImageIndex };
  }
  if (isDescriptor(obj['config']) && Array.isArray(obj['layers']) && obj['layers'].every(isDescriptor)) {
    return { kind: 'manifest', mediaType: declared === MEDIA.dockerManifest ? MEDIA.dockerManifest : MEDIA.ociManifest, manifest: obj as unknown as ImageManifest };
  }
  return undefined;
}

function isDescriptor(value: unknown): value is Descriptor {
  if (!value || typeof value !== 'object') return false;
  const d = value as Record<string, unknown>;
  return typeof d['mediaType'] === 'string' && typeof d['digest'] === 'string' && isSha256Digest(d['digest']) &&
    typeof d['size'] === 'number' && Number.isSafeInteger(d['size']) && d['size'] >= 0;
}

const LAYER_TO_OCI: Record<string, string> = {
  [MEDIA.dockerLayerGzip]: MEDIA.ociLayerGzip,
  [MEDIA.dockerLayerForeignGzip]: MEDIA.ociLayerNondistGzip,
  [MEDIA.ociLayer]: MEDIA.ociLayer,
  [MEDIA.ociLayerGzip]: MEDIA.ociLayerGzip,
  [MEDIA.ociLayerNondistGzip]: MEDIA.ociLayerNondistGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'application/vnd.oci.image.layer.nondistributable.v1.tar',
};

/** The OCI media type umoci 0.4.7 unpacks for a layer, or undefined (zstd and unknown types). */
export function ociLayerMediaType(mediaType: string): string | undefined {
  return LAYER_TO_OCI[mediaType];
}

/**
 * Rewrites a Docker schema-2 manifest with OCI media types (umoci only reads OCI); an OCI manifest
 * comes back as the same bytes. Digests of config and layers do not change.
 */
export function toOciManifestBytes(original: Buffer, parsed: ImageManifest, mediaType: string): Buffer {
  if (mediaType === MEDIA.ociManifest) return original;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: parsed.config.digest, size: parsed.config.size },
    layers: parsed.layers.map((l) => {
      const d: Descriptor = { mediaType: LAYER_TO_OCI[l.mediaType] ?? l.mediaType, digest: l.digest, size: l.size };
      if (l.annotations) d.annotations = l.annotations;
      return d;
    }),
  };
  if (parsed.annotations) manifest.annotations = parsed.annotations;
  return Buffer.from(JSON.stringify(manifest));
}
