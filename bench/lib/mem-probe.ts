/**
 * A memory probe for the leak bench, preloaded into `hangar up` and its agent through
 * `NODE_OPTIONS=--import=<this file>` only when HANGAR_MEM_PROBE_DIR is set (off by default; no
 * product code changes). On SIGUSR2 the process appends one JSON line to
 * `$HANGAR_MEM_PROBE_DIR/<pid>.jsonl`: `process.memoryUsage()`, the V8 heap spaces, and the
 * anonymous/file-backed split of its RSS from /proc/self/smaps_rollup. If the file
 * `$HANGAR_MEM_PROBE_DIR/<pid>.snapshot` exists when the signal comes, it also writes a heap
 * snapshot to `$HANGAR_MEM_PROBE_DIR/<pid>-<n>.heapsnapshot` (for a two-snapshot diff).
 * @module
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

const dir = process.env.HANGAR_MEM_PROBE_DIR;
if (dir) {
  let snapshots = 0;
  process.on('SIGUSR2', () => {
    const kb = (n: number) => Math.round(n / 1024);
    const m = process.memoryUsage();
    const smaps = (() => {
      try {
        return readFileSync('/proc/self/smaps_rollup', 'utf8');
      } catch {
        return '';
      }
    })();
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(smaps)?.[1] ?? 0);
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size_kb: kb(s.space_size), used_kb: kb(s.space_used_size) }]));
    const line = {
      t: Date.now(),
      rss_kb: kb(m.rss), heap_total_kb: kb(m.heapTotal), heap_used_kb: kb(m.heapUsed), external_kb: kb(m.external), array_buffers_kb: kb(m.arrayBuffers),
      anon_kb: field('Anonymous'), rss_file_kb: field('Rss') - field('Anonymous'), spaces,
    };
    appendFileSync(join(dir, `${process.pid}.jsonl`), `${JSON.stringify(line)}\n`);
    if (existsSync(join(dir, `${process.pid}.snapshot`))) writeHeapSnapshot(join(dir, `${process.pid}-${++snapshots}.heapsnapshot`));
  });
}
