/**
 * A minimal tar writer for test fixtures (image layers, OCI and docker archives): POSIX ustar
 * headers for regular files, directories, symlinks and hard links, with a PAX extended header when
 * a path or link target does not fit ustar's fields. Output is deterministic (fixed mtime, uid 0)
 * so the same entries always give the same digest.
 * @module
 */
import { open } from 'node:fs/promises';
import { basename, dirname, posix } from 'node:path';

export type TarEntry =
  | { type: 'file'; path: string; data: Buffer | string; mode?: number; mtime?: number; uid?: number; gid?: number }
  | { type: 'dir'; path: string; mode?: number; mtime?: number; uid?: number; gid?: number }
  | { type: 'symlink'; path: string; target: string; mtime?: number }
  /** A hard link: `target` is the path of an earlier entry in the same archive. */
  | { type: 'link'; path: string; target: string; mtime?: number };

const BLOCK = 512;
/** 2000-01-01: any fixed time keeps digests stable; 0 trips some tools' "implausibly old" warnings. */
export const FIXED_MTIME = 946684800;

/** A whiteout entry (OCI layer spec): deletes `path` from the layers below. */
export function whiteout(path: string): TarEntry {
  const clean = normalizePath(path);
  const dir = dirname(clean);
  return { type: 'file', path: posix.join(dir === '.' ? '' : dir, `.wh.${basename(clean)}`), data: Buffer.alloc(0), mode: 0o644 };
}

/** An opaque whiteout: hides everything the layers below have under `dir`. */
export function opaqueWhiteout(dir: string): TarEntry {
  return { type: 'file', path: posix.join(normalizePath(dir), '.wh..wh..opq'), data: Buffer.alloc(0), mode: 0o644 };
}

function normalizePath(path: string): string {
  return posix.normalize(path.replace(/^\/+/, '')).replace(/\/+$/, '');
}

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return Buffer.from(`${length}${body}`);
}

/** Splits a path into ustar `prefix` (≤155 bytes) and `name` (≤100 bytes), or undefined. */
function splitUstar(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { prefix, name };
  }
  return undefined;
}

interface HeaderFields {
  path: string;
  typeflag: string;
  size: number;
  mode: number;
  mtime: number;
  uid: number;
  gid: number;
  linkname: string;
}

function rawHeader(h: HeaderFields, split: { prefix: string; name: string }): Buffer {
  const buf = Buffer.alloc(BLOCK);
  buf.write(split.name, 0, 100, 'utf8');
  buf.write(octal(h.mode & 0o7777, 8), 100, 8, 'ascii');
  buf.write(octal(h.uid, 8), 108, 8, 'ascii');
  buf.write(octal(h.gid, 8), 116, 8, 'ascii');
  buf.write(octal(h.size, 12), 124, 12, 'ascii');
  buf.write(octal(h.mtime, 12), 136, 12, 'ascii');
  buf.write('        ', 148, 8, 'ascii');
  buf.write(h.typeflag, 156, 1, 'ascii');
  buf.write(h.linkname, 157, 100, 'utf8');
  buf.write('ustar\u000000', 257, 8, 'binary');
  buf.write('root', 265, 32, 'ascii');
  buf.write('root', 297, 32, 'ascii');
  buf.write(split.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of buf) sum += byte;
  buf.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return buf;
}

function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rem);
}

/** The header block(s) for one entry: a PAX header first when ustar can't hold the names or size. */
export function tarHeader(h: HeaderFields): Buffer {
  const split = splitUstar(h.path);
  const needsPax = !split || Buffer.byteLength(h.linkname) > 100 || h.size > 0o77777777777;
  if (!needsPax) return rawHeader(h, split);
  const records: Buffer[] = [];
  if (!split) records.push(paxRecord('path', h.path));
  if (Buffer.byteLength(h.linkname) > 100) records.push(paxRecord('linkpath', h.linkname));
  if (h.size > 0o77777777777) records.push(paxRecord('size', String(h.size)));
  const pax = Buffer.concat(records);
  const paxName = `PaxHeaders/${h.path.split('/').pop()!.slice(0, 80)}`;
  return Buffer.concat([
    rawHeader({ ...h, path: paxName, typeflag: 'x', size: pax.length, linkname: '' }, { prefix: '', name: paxName }),
    pax,
    padding(pax.length),
    rawHeader(
      { ...h, size: Math.min(h.size, 0o77777777777), linkname: h.linkname.slice(0, 100) },
      split ?? { prefix: '', name: h.path.slice(-100) },
    ),
  ]);
}

function entryParts(entry: TarEntry): Buffer[] {
  const base = { mtime: entry.mtime ?? FIXED_MTIME, uid: 0, gid: 0 };
  let path = normalizePath(entry.path);
  switch (entry.type) {
    case 'file': {
      const data = typeof entry.data === 'string' ? Buffer.from(entry.data) : entry.data;
      const header = tarHeader({ ...base, uid: entry.uid ?? 0, gid: entry.gid ?? 0, path, typeflag: '0', size: data.length, mode: entry.mode ?? 0o644, linkname: '' });
      return [header, data, padding(data.length)];
    }
    case 'dir':
      path = `${path}/`;
      return [tarHeader({ ...base, uid: entry.uid ?? 0, gid: entry.gid ?? 0, path, typeflag: '5', size: 0, mode: entry.mode ?? 0o755, linkname: '' })];
    case 'symlink':
      return [tarHeader({ ...base, path, typeflag: '2', size: 0, mode: 0o777, linkname: entry.target })];
    case 'link':
      return [tarHeader({ ...base, path, typeflag: '1', size: 0, mode: 0o644, linkname: normalizePath(entry.target) })];
  }
}

/** Builds a whole archive in memory (fine for layers up to a few hundred MB). */
export function createTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) parts.push(...entryParts(entry));
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/**
 * Writes an archive to `file`, streaming file contents from disk: `entries` may name a `source`
 * file instead of carrying the data, so large blobs are never held in memory.
 */
export async function writeTarFile(
  file: string,
  entries: (TarEntry | { type: 'file'; path: string; source: string; size: number; mode?: number })[],
): Promise<void> {
  const out = await open(file, 'w');
  try {
    for (const entry of entries) {
      if (entry.type === 'file' && 'source' in entry) {
        const path = normalizePath(entry.path);
        await out.write(tarHeader({ path, typeflag: '0', size: entry.size, mode: entry.mode ?? 0o644, mtime: FIXED_MTIME, uid: 0, gid: 0, linkname: '' }));
        const src = await open(entry.source, 'r');
        try {
          const chunk = Buffer.alloc(1 << 20);
          let copied = 0;
          while (copied < entry.size) {
            const { bytesRead } = await src.read(chunk, 0, Math.min(chunk.length, entry.size - copied), copied);
            if (bytesRead === 0) throw new Error(`${entry.source} is shorter than ${entry.size} bytes`);
            await out.write(chunk.subarray(0, bytesRead));
            copied += bytesRead;
          }
        } finally {
          await src.close();
        }
        await out.write(padding(entry.size));
      } else {
        for (const part of entryParts(entry as TarEntry)) if (part.length > 0) await out.write(part);
      }
    }
    await out.write(Buffer.alloc(BLOCK * 2));
  } finally {
    await out.close();
  }
}
