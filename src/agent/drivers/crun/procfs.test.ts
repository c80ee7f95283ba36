import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { until } from '../../../testkit/waiting.js';
import { processStats } from './procfs.js';

test('processStats: cpu and stime are whole milliseconds (Fly clients decode them as unsigned integers)', async () => {
  // A process that has spent some CPU: about 200 ms of busy loop, then it waits to be read.
  const child = spawn(process.execPath, ['-e', 'const t = Date.now(); while (Date.now() - t < 200); setInterval(() => {}, 1000);'], { stdio: 'ignore' });
  try {
    // Read once the busy loop's CPU shows (bounded): the assertions below then check its units.
    const stat = await until('the busy loop to use 100 ms of CPU', async () => {
      const [s] = await processStats([child.pid!]);
      return s && s.cpu >= 100 ? s : undefined;
    }, 5_000);
    assert.equal(stat.pid, child.pid);
    for (const field of ['cpu', 'stime', 'rtime', 'rss'] as const) assert.ok(Number.isInteger(stat[field]) && stat[field] >= 0, `${field} = ${stat[field]}`);
    assert.ok(stat.cpu >= 100, `cpu ${stat.cpu} ms after ~200 ms of busy loop`);
    assert.ok(stat.cpu < 60_000, `cpu ${stat.cpu} ms is milliseconds, not ticks or microseconds`);
    assert.ok(stat.stime <= stat.cpu);
  } finally {
    child.kill('SIGKILL');
  }
});
