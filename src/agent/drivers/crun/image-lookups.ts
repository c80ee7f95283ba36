/**
 * The user and entrypoint lookups of a start, remembered per image lower dir. Without
 * `config.files` a start looks both up in the image's own unpacked rootfs (the fresh upper dir adds
 * nothing), which never changes for a digest, so every start of the same machine version would
 * walk the same paths again: ~1-1.5 ms of lstat/stat/readFile per start for a PATH search. Only
 * answers found are kept (an error is recomputed, and reported, every time).
 * @module
 */
import { findExecutable, resolveUser } from './rootfs.js';

/** Entries kept before the oldest are dropped (images × users/entrypoints on one host). */
const LIMIT = 512;

export class ImageLookups {
  private readonly users = new Map<string, { uid: number; gid: number }>();
  private readonly executables = new Map<string, string>();

  /** `resolveUser` in an image's unpacked (read-only) rootfs. */
  async user(imageRootfs: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
    const key = `${imageRootfs}\0${user ?? ''}`;
    const known = this.users.get(key);
    if (known) return { ...known };
    const found = await resolveUser(imageRootfs, user);
    remember(this.users, key, found);
    return { ...found };
  }

  /** `findExecutable` in an image's unpacked (read-only) rootfs; only PATH of `env` matters. */
  async executable(imageRootfs: string, argv0: string, env: string[]): Promise<string | undefined> {
    const path = env.find((e) => e.startsWith('PATH='));
    const key = `${imageRootfs}\0${argv0}\0${path ?? ''}`;
    const known = this.executables.get(key);
    if (known !== undefined) return known;
    const found = await findExecutable(imageRootfs, argv0, env);
    if (found !== undefined) remember(this.executables, key, found);
    return found;
  }
}

function remember<T>(map: Map<string, T>, key: string, value: T): void {
  if (map.size >= LIMIT) map.delete(map.keys().next().value!);
  map.set(key, value);
}
