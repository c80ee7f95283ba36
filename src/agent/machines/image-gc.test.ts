/**
 * The agent's image GC rule and timer with a fake driver that records what it is asked to keep:
 * names of machines that are not destroyed are passed, destroyed ones are not, the periodic run
 * uses the grace and the explicit one none, runs never overlap, `close()` stops the timer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../core/logger.js';
import { createAgent } from '../create-agent.js';
import { baseSpec } from '../drivers/driver.conformance.js';
import type { ImageGcOptions } from '../drivers/driver.js';
import { FakeDriver } from '../drivers/fake/fake-driver.js';
import { parseAgentArgs } from '../main.js';

class GcRecordingDriver extends FakeDriver {
  readonly calls: ImageGcOptions[] = [];
  active = 0;
  overlapped = false;
  async gcImages(options: ImageGcOptions) {
    if (this.active++ > 0) this.overlapped = true;
    this.calls.push(options);
    await new Promise((r) => setTimeout(r, 5));
    this.active--;
    return { removed: [] };
  }
}

test('image gc: in-use names, periodic grace, explicit run, no overlap, stops on close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hangar-image-gc-'));
  const driver = new GcRecordingDriver({ hostId: 'h' });
  const agent = createAgent({
    dataDir: dir, region: 'lcl', driver, token: 't', logger: silentLogger, listen: { host: '127.0.0.1', port: 0 },
    imageGc: { intervalMs: 30, graceMs: 7_000 },
  });
  try {
    await agent.start();
    const keep = agent.manager.create(baseSpec({ config: { image: 'keep:1' } }), true);
    const gone = agent.manager.create(baseSpec({ config: { image: 'gone:1' } }), false);
    const [, goneResult] = await Promise.all([keep, gone]);
    await agent.manager.destroy(goneResult.machine.id, true);

    const deadline = Date.now() + 5000;
    while (!driver.calls.some((c) => c.graceMs === 7_000) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const periodic = driver.calls.find((c) => c.graceMs === 7_000);
    assert.ok(periodic, 'the timer ran with the configured grace');
    await Promise.all([agent.imageGc.run(0), agent.imageGc.run(0)]);
    const explicit = driver.calls.at(-1)!;
    assert.equal(explicit.graceMs, 0);
    assert.deepEqual(explicit.keepNames, ['keep:1']);
    assert.equal(driver.overlapped, false);
  } finally {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const after = driver.calls.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(driver.calls.length, after, 'no runs after close');
});

test('hangar agent --image-gc-interval', () => {
  assert.equal(parseAgentArgs(['--image-gc-interval', '30m'], {}).imageGcIntervalMs, 1_800_000);
  assert.equal(parseAgentArgs(['--image-gc-interval', '0'], {}).imageGcIntervalMs, 0);
  assert.throws(() => parseAgentArgs(['--image-gc-interval', 'soon'], {}), /--image-gc-interval: expected a duration/);
});
