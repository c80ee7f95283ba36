/**
 * The agent's image routes (docs/images.md): `POST /agent/v1/images/import?name=NAME` takes an
 * image archive as a streaming body (not the 1 MiB JSON limit: up to `maxBytes`, default 10 GiB),
 * spools it to `<dataDir>/uploads/`, checks it is a tar (gunzipping a gzip'd one), hands it to the
 * driver's image store and deletes it. `GET /agent/v1/images` lists, `POST /agent/v1/images/gc`
 * collects (grace `grace` seconds for imported names, default 0: the caller asked for it).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { AgentImage, AgentImageGcResult, AgentImageImportResult } from '../../api-types/agent.js';
import { HangarError, toHangarError } from '../../core/errors.js';
import { queryInt, type Router } from '../../http/router.js';
import type { Driver } from '../drivers/driver.js';
import type { ImageGc } from '../machines/image-gc.js';

export const DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 ** 3;

/** What every "this is not an image archive" message tells the user to send instead. */
export const ARCHIVE_KINDS =
  'an OCI archive (an oci-layout tar: `skopeo copy … oci-archive:FILE`, `podman save --format oci-archive`) ' +
  'or a docker-archive tarball (`docker save`, `podman save`), optionally gzip-compressed';

export interface ImageRouteDeps {
  driver: Driver;
  gc: ImageGc;
  /** Uploads are spooled under `<dataDir>/uploads/`. */
  dataDir: string;
  maxBytes?: number;
}

export function registerImageRoutes(router: Router, deps: ImageRouteDeps): void {
  const { driver } = deps;
  const maxBytes = deps.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  const needStore = () => {
    if (!driver.importImage || !driver.listImages) {
      throw new HangarError('failed_precondition', `the ${driver.name} driver keeps no images; import images on hosts whose agent runs the crun or runc driver`);
    }
  };
  router
    .get('/agent/v1/images', async (): Promise<AgentImage[]> => {
      needStore();
      const inUse = driver.imagesInUse?.() ?? new Set<string>();
      return (await driver.listImages!()).map((i) => ({ ...i, in_use: inUse.has(i.digest) }));
    })
    .post('/agent/v1/images/gc', async (ctx): Promise<AgentImageGcResult> => {
      needStore();
      const grace = queryInt(ctx.query, 'grace', 0, 365 * 86_400) ?? 0;
      return deps.gc.run(grace * 1000);
    })
    .post('/agent/v1/images/import', async (ctx): Promise<AgentImageImportResult> => {
      needStore();
      const name = ctx.query.get('name') || undefined;
      const dir = join(deps.dataDir, 'uploads');
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const file = join(dir, `upload-${randomBytes(6).toString('hex')}.tar`);
      try {
        await receiveArchive(ctx.req, file, maxBytes);
        try {
          return await driver.importImage!(file, name);
        } catch (err) {
          const e = toHangarError(err);
          throw new HangarError(e.code, e.message.replaceAll(file, 'the uploaded archive'), { cause: err });
        }
      } finally {
        await rm(file, { force: true });
        await rm(`${file}.raw`, { force: true });
      }
    });
}

/** Removes uploads a previous agent left behind (it crashed mid-upload). */
export async function cleanUploads(dataDir: string): Promise<void> {
  await rm(join(dataDir, 'uploads'), { recursive: true, force: true });
}

/** Spools the request body to `file` (gunzipped when it is gzip), bounded, and checks it is a tar. */
export async function receiveArchive(req: IncomingMessage, file: string, maxBytes: number): Promise<void> {
  const limitText = formatBytes(maxBytes);
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) {
    throw new HangarError('payload_too_large', `image archive of ${declared} bytes exceeds the ${limitText} limit; trim the image or raise the agent's limit`);
  }
  const raw = `${file}.raw`;
  await pipeline(req, limitBytes(maxBytes, limitText), createWriteStream(raw, { mode: 0o600 })).catch((err: unknown) => {
    if (err instanceof HangarError) throw err;
    throw new HangarError('bad_request', `could not read the image archive upload: ${(err as Error).message}; retry`, { cause: err });
  });
  const head = await readHead(raw, 512);
  if (head.length === 0) throw new HangarError('invalid_argument', `the request body is empty; send ${ARCHIVE_KINDS}`);
  if (head[0] === 0x1f && head[1] === 0x8b) {
    await pipeline(createReadStream(raw), createGunzip(), limitBytes(maxBytes, limitText), createWriteStream(file, { mode: 0o600 })).catch((err: unknown) => {
      if (err instanceof HangarError) throw err;
      throw new HangarError('invalid_argument', `the upload is gzip-compressed but does not decompress (${(err as Error).message}); send ${ARCHIVE_KINDS}`, { cause: err });
    });
    await rm(raw, { force: true });
  } else {
    await rename(raw, file);
  }
  if (!isTar(await readHead(file, 512))) {
    throw new HangarError('invalid_argument', `the upload is not a tar archive; send ${ARCHIVE_KINDS}`);
  }
}

/** A POSIX/GNU tar header: `ustar` magic at offset 257 (Docker, Go, GNU tar and skopeo all write it). */
export function isTar(head: Buffer): boolean {
  return head.length >= 263 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

function limitBytes(maxBytes: number, limitText: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) done(new HangarError('payload_too_large', `image archive exceeds the ${limitText} limit; trim the image or raise the agent's limit`));
      else done(null, chunk);
    },
  });
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await handle.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
  if (n >= 1024 ** 2 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MiB`;
  return `${n} bytes`;
}
