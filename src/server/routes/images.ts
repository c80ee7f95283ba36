/**
 * Images, a Hangar extension of the Machines API (docs/images.md): `POST /v1/images/import` takes an
 * image archive (oci-archive or docker-archive, optionally gzip'd) as a streaming body and loads it
 * on every connected host (or those of `region`), so a machine config's `image` can name it on hosts
 * without a registry. One host: the body is piped straight through. Several: it is spooled to a temp
 * file once and sent to each host in turn. `GET /v1/images` lists each host's images,
 * `POST /v1/images/gc` collects unused ones now. Images belong to hosts, not to organizations; any
 * authenticated caller may use these routes.
 * @module
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GcImagesResponse, ImportImageResponse, ListImagesResponse } from '../../api-types/image.js';
import { HangarError } from '../../core/errors.js';
import { queryInt, type RequestContext, type Router } from '../../http/router.js';
import type { Store } from '../../store/store.js';
import type { AgentLink } from '../agent-link.js';
import type { HostRegistry } from '../host-registry.js';

export const MAX_IMAGE_ARCHIVE_BYTES = 10 * 1024 ** 3;

export interface ImageRouteDeps {
  store: Store;
  hosts: HostRegistry;
  /** Where archives for several hosts are spooled; default the OS temp dir. */
  tempDir?: string;
  maxBytes?: number;
}

interface Target {
  hostId: string;
  region: string;
  link: AgentLink;
}

export function registerImageRoutes(router: Router, deps: ImageRouteDeps): void {
  const maxBytes = deps.maxBytes ?? MAX_IMAGE_ARCHIVE_BYTES;

  const targets = async (region: string | undefined, verb: string): Promise<Target[]> => {
    if (region !== undefined && !/^[a-z]{3}$/.test(region)) {
      throw new HangarError('invalid_argument', `query parameter region: expected a three-letter region code such as "ams", got ${JSON.stringify(region)}`);
    }
    const regions = new Map((await deps.store.listHosts()).map((h) => [h.id, h.region]));
    const chosen = deps.hosts.entries()
      .map(([hostId, link]) => ({ hostId, region: regions.get(hostId) ?? '', link }))
      .filter((t) => region === undefined || t.region === region)
      .sort((a, b) => a.hostId.localeCompare(b.hostId));
    if (chosen.length === 0) {
      throw new HangarError('unavailable', `no host${region ? ` in region ${region}` : ''} is connected to ${verb}; start an agent (\`hangar up\`) and retry`);
    }
    return chosen;
  };
  const region = (ctx: RequestContext) => ctx.query.get('region') || undefined;

  router.post('/v1/images/import', async (ctx): Promise<ImportImageResponse> => {
    const name = ctx.query.get('name') || undefined;
    const chosen = await targets(region(ctx), 'import an image into');
    const declared = ctx.req.headers['content-length'] === undefined ? undefined : Number(ctx.req.headers['content-length']);
    if (declared !== undefined && declared > maxBytes) {
      throw new HangarError('payload_too_large', `image archive of ${declared} bytes exceeds the ${maxBytes / 1024 ** 3} GiB limit`);
    }
    // The client going away mid-upload must end the agents' uploads too.
    const abort = new AbortController();
    ctx.req.once('close', () => {
      if (!ctx.req.complete) abort.abort();
    });
    const results: ImportImageResponse['hosts'] = [];
    const importTo = async (t: Target, body: Readable, size: number | undefined) => {
      try {
        const r = await t.link.importImage(body, { ...(name ? { name } : {}), ...(size !== undefined ? { size } : {}), signal: abort.signal });
        results.push({ host_id: t.hostId, region: t.region, name: r.name, digest: r.digest });
      } catch (err) {
        if (err instanceof HangarError && err.code !== 'invalid_argument' && chosen.length > 1) {
          throw new HangarError(err.code, `host ${t.hostId} (${t.region}): ${err.message}`, { cause: err });
        }
        throw err;
      }
    };
    if (chosen.length === 1) {
      await importTo(chosen[0]!, ctx.req, declared);
    } else {
      const dir = await mkdtemp(join(deps.tempDir ?? tmpdir(), 'hangar-image-'));
      try {
        const file = join(dir, 'archive');
        await pipeline(ctx.req, limit(maxBytes), createWriteStream(file, { mode: 0o600 })).catch((err: unknown) => {
          if (err instanceof HangarError) throw err;
          throw new HangarError('bad_request', `could not read the image archive upload: ${(err as Error).message}; retry`, { cause: err });
        });
        const size = (await stat(file)).size;
        for (const t of chosen) await importTo(t, createReadStream(file), size);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    return { name: results[0]!.name, digest: results[0]!.digest, hosts: results };
  });

  router.get('/v1/images', async (ctx): Promise<ListImagesResponse> => {
    const chosen = await targets(region(ctx), 'list images of');
    return {
      hosts: await Promise.all(chosen.map(async (t) => {
        try {
          return { host_id: t.hostId, region: t.region, images: await t.link.listImages() };
        } catch (err) {
          return { host_id: t.hostId, region: t.region, images: [], error: (err as Error).message };
        }
      })),
    };
  });

  router.post('/v1/images/gc', async (ctx): Promise<GcImagesResponse> => {
    const chosen = await targets(region(ctx), 'collect images on');
    const grace = queryInt(ctx.query, 'grace', 0, 365 * 86_400);
    return {
      hosts: await Promise.all(chosen.map(async (t) => {
        try {
          return { host_id: t.hostId, region: t.region, ...(await t.link.gcImages(grace)) };
        } catch (err) {
          return { host_id: t.hostId, region: t.region, removed: [], error: (err as Error).message };
        }
      })),
    };
  });
}

function limit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) done(new HangarError('payload_too_large', `image archive exceeds the ${maxBytes / 1024 ** 3} GiB limit`));
      else done(null, chunk);
    },
  });
}
