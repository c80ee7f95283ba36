/**
 * The route watch stream proxies follow: a snapshot, then an upsert per machine change and a remove
 * when a machine is destroyed or its app deleted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RouteEvent } from '../../src/api-types/watch.js';
import { parseNdjson } from '../../src/core/ndjson.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';

const IMAGE = 'registry.example.test/hello:1.0';

/** Reads the stream in the background; `next(match)` waits for the first matching event. */
function follow(cluster: TestCluster) {
  const abort = new AbortController();
  const events: RouteEvent[] = [];
  const waiters: { match: (e: RouteEvent) => boolean; resolve: (e: RouteEvent) => void }[] = [];
  const ready = (async () => {
    const res = await cluster.fetch('/v1/watch/routes', { signal: abort.signal });
    assert.equal(res.status, 200);
    return res;
  })();
  void ready.then(async (res) => {
    try {
      for await (const event of parseNdjson<RouteEvent>(res.body as unknown as AsyncIterable<Uint8Array>)) {
        events.push(event);
        for (const w of [...waiters]) if (w.match(event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    } catch {
      // aborted
    }
  });
  const next = (match: (e: RouteEvent) => boolean, what: string) =>
    new Promise<RouteEvent>((resolve, reject) => {
      const seen = events.find(match);
      if (seen) return resolve(seen);
      waiters.push({ match, resolve });
      setTimeout(() => reject(new Error(`no ${what} within 5 s; got ${JSON.stringify(events.map((e) => e.type))}`)), 5000);
    });
  return { events, next, stop: () => abort.abort() };
}

describe('route watch stream', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
    await cluster.client.apps.create({ name: 'routed', org_slug: 'personal' });
  });
  after(async () => {
    await cluster.close();
  });

  test('snapshot, upserts on changes, removes on destroy and app delete', async () => {
    const first = await cluster.client.machines.create('routed', {
      config: { image: IMAGE, services: [{ protocol: 'tcp', internal_port: 8080, autostop: true as never, ports: [{ port: 80, handlers: ['http'] }] }] },
    });
    const watch = follow(cluster);
    try {
      const snapshot = await watch.next((e) => e.type === 'snapshot', 'snapshot');
      assert.ok(snapshot.type === 'snapshot');
      const routed = snapshot.machines.find((m) => m.id === first.id);
      assert.ok(routed, 'the existing machine is in the snapshot');
      assert.equal(routed.app_name, 'routed');
      assert.equal(routed.state, 'started');
      assert.equal(routed.private_ip, first.private_ip);
      assert.equal(routed.services[0]?.autostop, 'stop');
      assert.equal(routed.host_status, 'ok');

      await cluster.client.machines.stop('routed', first.id);
      await watch.next((e) => e.type === 'upsert' && e.machine.id === first.id && e.machine.state === 'stopped', 'stopped upsert');

      const second = await cluster.client.machines.create('routed', { config: { image: IMAGE } });
      await watch.next((e) => e.type === 'upsert' && e.machine.id === second.id && e.machine.state === 'started', 'new machine upsert');
      await cluster.client.machines.cordon('routed', second.id);
      await watch.next((e) => e.type === 'upsert' && e.machine.id === second.id && e.machine.cordoned, 'cordon upsert');

      await cluster.client.machines.delete('routed', second.id, { force: true });
      await watch.next((e) => e.type === 'remove' && e.machine_id === second.id, 'remove on destroy');

      await cluster.client.apps.delete('routed', { force: true });
      const removed = await watch.next((e) => e.type === 'remove' && e.machine_id === first.id, 'remove on app delete');
      assert.ok(removed.type === 'remove' && removed.app_name === 'routed');
      const seqs = watch.events.map((e) => e.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'seq counts lines');
    } finally {
      watch.stop();
    }
  });
});
