/**
 * Machine logs through the API (a Hangar extension): backlog merged by time across machines, one
 * machine by id, follow receiving new lines, unknown machines 404. Fake-driver machines print the
 * lines of their `hangar_fake_stdout` metadata on every start and a line on every exit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LogEntry } from '../../src/api-types/machine.js';
import type { HangarError } from '../../src/core/errors.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';

const IMAGE = 'registry.example.test/hello:1.0';

async function collect(iterable: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const entry of iterable) out.push(entry);
  return out;
}

describe('logs', () => {
  let cluster: TestCluster;
  let a: string;
  let b: string;
  before(async () => {
    cluster = await startCluster();
    await cluster.client.apps.create({ name: 'loud', org_slug: 'personal' });
    a = (await cluster.client.machines.create('loud', { config: { image: IMAGE, metadata: { hangar_fake_stdout: 'a-one\na-two' } } })).id;
    b = (await cluster.client.machines.create('loud', { config: { image: IMAGE, metadata: { hangar_fake_stdout: 'b-one' } } })).id;
  });
  after(async () => {
    await cluster.close();
  });

  test('the backlog of every machine, merged by time, limited by tail', async () => {
    const all = await collect(cluster.client.logs('loud', { follow: false }));
    assert.deepEqual(all.map((e) => e.message), ['a-one', 'a-two', 'b-one']);
    assert.ok(all.every((e) => e.region === 'lcl' && e.stream === 'stdout'));
    assert.deepEqual(all.map((e) => e.machine_id), [a, a, b]);
    const last = await collect(cluster.client.logs('loud', { follow: false, tail: 1 }));
    assert.deepEqual(last.map((e) => e.message), ['b-one']);
  });

  test('one machine by id', async () => {
    const only = await collect(cluster.client.logs('loud', { machine: b, follow: false }));
    assert.deepEqual(only.map((e) => e.message), ['b-one']);
    const res = await cluster.fetch(`/v1/apps/loud/machines/${a}/logs?tail=10`);
    assert.equal(res.status, 200);
    assert.equal((await res.text()).trim().split('\n').length, 2);
  });

  test('follow delivers new lines until the client stops', async () => {
    const abort = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const entry of cluster.client.logs('loud', { machine: a, tail: 0, follow: true, signal: abort.signal })) {
        seen.push(entry.message);
        if (seen.includes('a-two')) abort.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await cluster.client.machines.restart('loud', a);
    await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error(`no new lines: ${seen}`)), 5000))]);
    assert.ok(seen.some((m) => m.startsWith('fake: workload exited')), 'the exit line of the restart');
    assert.ok(seen.includes('a-one') && seen.includes('a-two'), 'the lines of the new start');
  });

  test('unknown machines and apps are 404', async () => {
    await assert.rejects(collect(cluster.client.logs('loud', { machine: '00000000000000', follow: false })), (err: HangarError) => err.code === 'not_found');
    await assert.rejects(collect(cluster.client.logs('nope', { follow: false })), (err: HangarError) => err.code === 'not_found');
  });
});
