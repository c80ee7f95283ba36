/**
 * The real host behind `HostProbes` and `HostExecutor`: files under /proc and /sys, PATH lookups,
 * dpkg-query, and child processes whose output goes to stderr (stdout is the step list).
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { HostExecutor } from './runner.js';
import type { HostAction, HostProbes } from './requirements.js';

/** Root's PATH may lack the sbin directories (nft, mkfs.ext4, modprobe live there). */
const EXTRA_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function searchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...new Set([...(env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_PATH])];
}

export function realProbes(): HostProbes {
  let dpkgVersions: Map<string, string> | undefined;
  return {
    uid: () => process.getuid?.() ?? -1,
    readFile(path) {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    exists: (path) => existsSync(path),
    isCharDevice(path) {
      try {
        return statSync(path).isCharacterDevice();
      } catch {
        return false;
      }
    },
    which(command) {
      for (const dir of searchPath()) {
        const path = join(dir, command);
        try {
          accessSync(path, constants.X_OK);
          if (statSync(path).isFile()) return path;
        } catch {
          // not here
        }
      }
      return undefined;
    },
    hasApt: () => existsSync('/usr/bin/dpkg-query') && existsSync('/usr/bin/apt-get'),
    packageVersion(pkg) {
      if (!dpkgVersions) {
        // One dpkg-query for every installed package: cheaper than one process per package.
        dpkgVersions = new Map();
        const res = spawnSync('dpkg-query', ['-W', '-f', '${Package}\t${db:Status-Abbrev}\t${Version}\n'], { encoding: 'utf8', maxBuffer: 64 << 20 });
        for (const line of (res.stdout ?? '').split('\n')) {
          const [name, status, version] = line.split('\t');
          if (name && version && status?.startsWith('ii')) dpkgVersions.set(name.replace(/:.*$/, ''), version);
        }
      }
      return dpkgVersions.get(pkg);
    },
  };
}

export function realExecutor(): HostExecutor {
  return {
    async run(action: HostAction) {
      switch (action.kind) {
        case 'mkdir':
          mkdirSync(action.path, { recursive: true });
          return;
        case 'write':
          writeFileSync(action.path, action.content);
          return;
        case 'exec':
          await new Promise<void>((resolve, reject) => {
            const [command, ...args] = action.argv;
            const child = spawn(command!, args, {
              env: { ...process.env, PATH: searchPath().join(delimiter), ...action.env },
              // stdout of setup is the step list; the commands' own output goes to stderr.
              stdio: ['ignore', 2, 'pipe'],
            });
            let stderr = '';
            child.stderr!.on('data', (chunk: Buffer) => {
              process.stderr.write(chunk);
              stderr = (stderr + chunk.toString()).slice(-4000);
            });
            child.once('error', (err) => reject(new Error(`${command}: ${err.message}`)));
            child.once('close', (code, signal) => {
              if (code === 0) resolve();
              else reject(new Error(`${action.argv.join(' ')} failed (${signal ?? `exit ${code}`})${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`));
            });
          });
      }
    },
  };
}
