/**
 * Machine logs: the container writes straight to `logs/stdout.log` and `logs/stderr.log` (opened
 * O_APPEND by the agent, inherited by the shim, crun and the app; no copying process in between).
 * The driver bounds them copytruncate-style: above `maxBytes` a file is copied to `<file>.1`
 * (replacing the older one) and truncated; O_APPEND writers continue at the new end. Lines written
 * between the copy and the truncate can be lost; that is the price of having no log process.
 *
 * `readLogs` answers `{timestamp, stream, message}` lines. Files carry no per-line times: tail lines
 * get their file's modification time, followed lines the time the agent read them.
 * @module
 */
import { copyFile, open, stat, truncate } from 'node:fs/promises';

import type { LogLine, ReadLogsOptions } from '../driver.js';

export type { LogLine, ReadLogsOptions };

export async function rotateIfNeeded(file: string, maxBytes: number): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (!info || info.size <= maxBytes) return false;
  await copyFile(file, `${file}.1`);
  await truncate(file, 0);
  return true;
}

async function readLines(file: string): Promise<{ lines: string[]; size: number; mtime: Date } | undefined> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const info = await handle.stat();
    const buf = Buffer.alloc(info.size);
    await handle.read(buf, 0, info.size, 0);
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n');
    const lines = end < 0 ? [] : text.slice(0, end).split('\n');
    return { lines, size: end + 1, mtime: info.mtime };
  } finally {
    await handle.close();
  }
}

export async function* readLogFiles(files: { stdout: string; stderr: string }, options: ReadLogsOptions = {}): AsyncGenerator<LogLine> {
  const tail = options.tail ?? 100;
  const offsets: Record<'stdout' | 'stderr', number> = { stdout: 0, stderr: 0 };
  const collected: LogLine[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const old = await readLines(`${files[stream]}.1`);
    const cur = await readLines(files[stream]);
    offsets[stream] = cur?.size ?? 0;
    for (const part of [old, cur]) {
      if (!part) continue;
      for (const message of part.lines) collected.push({ timestamp: part.mtime.toISOString(), stream, message });
    }
  }
  // Oldest file time first; stable within a file.
  collected.sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  for (const line of tail > 0 ? collected.slice(-tail) : tail === 0 ? [] : collected) yield line;
  if (!options.follow) return;
  const partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  while (!options.signal?.aborted) {
    for (const stream of ['stdout', 'stderr'] as const) {
      const info = await stat(files[stream]).catch(() => undefined);
      if (!info) continue;
      if (info.size < offsets[stream]) offsets[stream] = 0; // rotated
      if (info.size === offsets[stream]) continue;
      const handle = await open(files[stream], 'r');
      try {
        const length = info.size - offsets[stream];
        const buf = Buffer.alloc(length);
        await handle.read(buf, 0, length, offsets[stream]);
        offsets[stream] = info.size;
        const text = partial[stream] + buf.toString('utf8');
        const end = text.lastIndexOf('\n');
        partial[stream] = text.slice(end + 1);
        if (end < 0) continue;
        const now = new Date().toISOString();
        for (const message of text.slice(0, end).split('\n')) yield { timestamp: now, stream, message };
      } finally {
        await handle.close();
      }
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 200);
      options.signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
}
