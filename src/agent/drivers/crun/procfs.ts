/**
 * Reads what `ps`, OOM detection and recovery need straight from /proc, /sys/fs/cgroup and
 * /dev/kmsg: no process spawns.
 * @module
 */
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';
import { readFile, readdir, readlink } from 'node:fs/promises';
import type { ProcessStat } from '../../../api-types/machine.js';

const CLK_TCK = 100;

/** Host pids in a container's cgroup (v1 pids/memory/freezer hierarchies, or v2). */
export async function cgroupPids(cgroupPath: string): Promise<number[] | undefined> {
  for (const base of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup']) {
    const text = await readFile(`${base}${cgroupPath}/cgroup.procs`, 'utf8').catch(() => undefined);
    if (text !== undefined) return text.split('\n').filter(Boolean).map(Number);
  }
  return undefined;
}

/** `FROZEN`/`THAWED` (v1) or undefined. */
export async function freezerState(cgroupPath: string): Promise<string | undefined> {
  const text = await readFile(`/sys/fs/cgroup/freezer${cgroupPath}/freezer.state`, 'utf8').catch(() => undefined);
  return text?.trim();
}

export function processAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Alive and not a zombie: an ended child its parent has not reaped yet still passes kill(pid, 0)
 * (the shim spawner reaps its shims within a second).
 */
export function processRunning(pid: number | undefined): boolean {
  if (!processAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Process table of the given host pids, with in-container pids and listening sockets. */
export async function processStats(pids: number[]): Promise<ProcessStat[]> {
  const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
  const result: ProcessStat[] = [];
  for (const pid of pids) {
    try {
      const [stat, status, cmdline, cwd] = await Promise.all([
        readFile(`/proc/${pid}/stat`, 'utf8'),
        readFile(`/proc/${pid}/status`, 'utf8'),
        readFile(`/proc/${pid}/cmdline`, 'utf8'),
        readlink(`/proc/${pid}/cwd`).catch(() => '/'),
      ]);
      // Fields after the parenthesised command name; field 3 (state) is index 0 here.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // CPU times in whole milliseconds: Fly's clients read cpu and stime as unsigned integers
      // (a fraction fails to decode), and seconds would round most processes to 0.
      const utimeMs = (Number(fields[11]) * 1000) / CLK_TCK;
      const stimeMs = (Number(fields[12]) * 1000) / CLK_TCK;
      const started = Number(fields[19]) / CLK_TCK;
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const nspid = /NSpid:\s+([\d\s]+)/.exec(status)?.[1]?.trim().split(/\s+/).at(-1);
      result.push({
        pid: nspid ? Number(nspid) : pid,
        command: cmdline.split('\0').filter(Boolean).join(' '),
        directory: cwd,
        cpu: Math.round(utimeMs + stimeMs),
        rss: rssKb * 1024,
        rtime: Math.max(0, Math.floor(uptime - started)),
        stime: Math.round(stimeMs),
        listen_sockets: await listenSockets(pid),
      });
    } catch {
      // exited while we looked
    }
  }
  return result;
}

/** Listening TCP and bound UDP sockets owned by `pid`, from its network namespace's /proc tables. */
export async function listenSockets(pid: number): Promise<{ proto: string; address: string }[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]!);
  }
  if (inodes.size === 0) return [];
  const out: { proto: string; address: string }[] = [];
  for (const [file, proto, listenState] of [['tcp', 'tcp', '0A'], ['tcp6', 'tcp', '0A'], ['udp', 'udp', '07'], ['udp6', 'udp', '07']] as const) {
    const text = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== listenState || !inodes.has(cols[9]!)) continue;
      out.push({ proto, address: decodeAddress(cols[1]!) });
    }
  }
  return out;
}

/** `0100007F:1F90` → `127.0.0.1:8080`; 32-hex-digit IPv6 → `[...]:port`. */
export function decodeAddress(hex: string): string {
  const [addr, port] = hex.split(':') as [string, string];
  const p = parseInt(port, 16);
  if (addr.length === 8) {
    const bytes = addr.match(/../g)!.map((b) => parseInt(b, 16)).reverse();
    return `${bytes.join('.')}:${p}`;
  }
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const b = addr.slice(i, i + 8).match(/../g)!.reverse().join('');
    words.push(b.slice(0, 4), b.slice(4));
  }
  const full = words.map((w) => w.replace(/^0+(?=.)/, '')).join(':');
  const compact = full === '0:0:0:0:0:0:0:0' ? '::' : full.replace(/(^|:)0(:0)+(:|$)/, '::');
  return `[${compact}]:${p}`;
}

/**
 * Whether the kernel OOM-killed a task in memory cgroup `cgroupPath` at or after `sinceUsec`
 * (CLOCK_MONOTONIC microseconds, the clock of /dev/kmsg timestamps). cgroup v1 deletes the
 * counter (`memory.oom_control`) together with the container's cgroup, so the kernel log is the
 * record that outlives the container (and the agent).
 */
export function oomKilledSince(cgroupPath: string, sinceUsec: number): boolean {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  const needle = `oom_memcg=${cgroupPath},`;
  const buf = Buffer.alloc(8192);
  let found = false;
  try {
    for (let i = 0; i < 1_000_000; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records overwritten while reading
        break; // EAGAIN: end of the buffer
      }
      const record = buf.toString('utf8', 0, n);
      const semi = record.indexOf(';');
      const ts = Number(record.slice(0, semi).split(',')[2]);
      if (ts >= sinceUsec && (record.includes(needle) || record.includes(`oom_memcg=${cgroupPath}\n`))) found = true;
    }
  } finally {
    closeSync(fd);
  }
  return found;
}

export function monotonicUsec(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
