/**
 * How the long-running server processes (API server, agent) are launched: their V8 flags and the
 * glibc malloc settings in their environment. `bin/hangar` applies the same to the process it
 * execs (checked by `server-process.test.ts`); `hangar up` applies them to the agent and the proxy it spawns.
 * Measured over start/stop cycles with `bench/machine-cycles.ts` (docs/specification.md, "Real
 * machines"); GET throughput checked with `bench/api-throughput.ts`.
 * @module
 */

/**
 * V8 flags of the server processes.
 * - `--max-semi-space-size=8`: V8 grows the young generation to 2 × 16 MB under a steady request
 *   load and keeps it; the servers' short-lived garbage needs less, so it is capped at 2 × 8 MB.
 *   2 × 4 MB saved a few more MB over 10,000 start/stop cycles but halved the API's GET throughput
 *   (5.3k vs 10.6k req/s, p99 42 vs 10 ms, back to back); 8 MB keeps 9.1k.
 * - `--heap-growing-percent=50`: after a full GC V8 lets the old generation grow to up to 4× the
 *   live heap before the next one when GC looks cheap, so a ~15 MB live heap swung between 22 and
 *   60 MB of RSS over the cycles. 1.5× (V8 still adds at least 8 MB) keeps it near live + 8 MB;
 *   GET throughput was unchanged back to back.
 * - `--incremental-marking-hard-trigger=25`: V8 starts marking for the next full GC only close to
 *   that limit, so the old space still filled to live + 8 MB (14 → 22 MB, most of the API's
 *   remaining RSS growth over the cycles). Starting once a quarter of the headroom since the last
 *   GC is used collects it at ~live + 3 MB (14 → 17 MB). Costs more frequent full GCs of a small
 *   heap: machine start p50 unchanged, GET throughput inside the run-to-run noise (three A/B pairs).
 */
export const SERVER_V8_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=50', '--incremental-marking-hard-trigger=25'];

/**
 * glibc malloc settings; read once at process start, so they must be in the environment of the
 * exec, not set later. Without them each thread that allocates (libuv pool, V8 GC and compiler
 * workers) can get its own arena, and freed memory stays in those arenas: native memory grew
 * ~5–8 MB per process over the first 2,000 cycles. One arena and a fixed 128 KiB trim threshold
 * (which also fixes the mmap threshold, so large blocks go back to the kernel when freed) held it
 * under 1 MB, with no measurable cost on GET throughput or start latency. An operator's own values
 * win.
 */
export const SERVER_MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** The environment for a server process: `env` with the malloc settings it does not set itself. */
export function serverProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const [name, value] of Object.entries(SERVER_MALLOC_ENV)) if (out[name] === undefined || out[name] === '') out[name] = value;
  return out;
}
