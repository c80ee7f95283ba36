/**
 * What the driver does inside a machine's (merged, overlay) rootfs before each start: write
 * `config.files`, check that the entrypoint exists (so a bad image fails `start` with a clear
 * message instead of a container that dies at once), and resolve a named `User`. Paths are always
 * resolved *inside* the rootfs: absolute symlinks are re-rooted, `..` cannot escape.
 * @module
 */
import { lstat, mkdir, readFile, readlink, stat, writeFile, chmod } from 'node:fs/promises';
import { posix } from 'node:path';
import type { MachineConfig } from '../../../api-types/machine.js';
import { HangarError } from '../../../core/errors.js';

/** Resolves `path` (absolute, in-container) to a host path under `root`, following symlinks inside root. */
export async function resolveInRoot(root: string, path: string, depth = 0): Promise<string | undefined> {
  if (depth > 40) return undefined;
  const parts = posix.normalize(path).split('/').filter((p) => p && p !== '.');
  let current = '/';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const next = part === '..' ? posix.dirname(current) : posix.join(current, part);
    let info;
    try {
      info = await lstat(root + next);
    } catch {
      return undefined;
    }
    if (info.isSymbolicLink()) {
      const target = await readlink(root + next);
      const joined = target.startsWith('/') ? target : posix.join(current, target);
      const rest = parts.slice(i + 1).join('/');
      return resolveInRoot(root, rest ? posix.join(joined, rest) : joined, depth + 1);
    }
    current = next;
  }
  return root + current;
}

/** Finds `argv0` like execvp would (PATH from `env`); answers the in-container path or undefined. */
export async function findExecutable(root: string, argv0: string, env: string[]): Promise<string | undefined> {
  const candidates = argv0.includes('/')
    ? [argv0.startsWith('/') ? argv0 : `/${argv0}`]
    : (env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean).map((d) => posix.join(d, argv0));
  for (const candidate of candidates) {
    const host = await resolveInRoot(root, candidate);
    if (!host) continue;
    const info = await stat(host).catch(() => undefined);
    if (info?.isFile() && (info.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

/** `nginx`, `nginx:www`, `1000`, `1000:1000` → numbers, reading the image's /etc/passwd and /etc/group. */
export async function resolveUser(root: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':') as [string, string | undefined];
  const lookup = async (file: string, name: string): Promise<string[] | undefined> => {
    const host = await resolveInRoot(root, file);
    const text = host ? await readFile(host, 'utf8').catch(() => '') : '';
    return text.split('\n').map((l) => l.split(':')).find((f) => f[0] === name);
  };
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) uid = Number(u);
  else {
    const entry = await lookup('/etc/passwd', u);
    if (!entry) throw new HangarError('failed_precondition', `the image's user ${JSON.stringify(u)} is not in its /etc/passwd; set a numeric user`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const entry = await lookup('/etc/group', g);
      if (!entry) throw new HangarError('failed_precondition', `the image's group ${JSON.stringify(g)} is not in its /etc/group`);
      gid = Number(entry[2]);
    }
  }
  return { uid, gid: gid ?? uid };
}

/**
 * Writes `config.files` (raw_value, base64) into the rootfs. `secret_name` needs the secret store,
 * which the agent does not have yet, so such a file fails the start with a message that says so.
 */
export async function writeMachineFiles(root: string, files: MachineConfig['files']): Promise<void> {
  for (const file of files ?? []) {
    let content: Buffer;
    if (file.raw_value !== undefined) content = Buffer.from(file.raw_value, 'base64');
    else if (file.image_config !== undefined) content = Buffer.from(file.image_config, 'utf8');
    else throw new HangarError('failed_precondition', `files: ${file.guest_path}: secret_name is not supported by this agent yet; pass the content as raw_value`);
    const dir = posix.dirname(file.guest_path);
    const hostDir = await ensureDirInRoot(root, dir);
    const target = posix.join(hostDir, posix.basename(file.guest_path));
    await writeFile(target, content, { mode: file.mode ?? 0o644 });
    if (file.mode !== undefined) await chmod(target, file.mode);
  }
}

async function ensureDirInRoot(root: string, dir: string): Promise<string> {
  let current = '/';
  for (const part of dir.split('/').filter(Boolean)) {
    const next = posix.join(current, part);
    const resolved = await resolveInRoot(root, next);
    if (resolved) {
      current = resolved.slice(root.length) || '/';
      continue;
    }
    await mkdir(root + next, { mode: 0o755 });
    current = next;
  }
  return root + current;
}
