/**
 * The API server and an agent that goes away and comes back: the catalog says the host is
 * unreachable, operations answer 503 `unavailable` and change nothing, and after the agent restarts
 * the server catches up with what happened (here a fake-driver "reboot": running machines exit and
 * come back per their restart policy).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HangarError } from '../../src/core/errors.js';
import { startCluster, type TestCluster } from '../../src/testkit/cluster.js';
import { until } from '../../src/testkit/waiting.js';

const IMAGE = 'registry.example.test/hello:1.0';

describe('agent restarts', () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
    await cluster.client.apps.create({ name: 'resilient', org_slug: 'personal' });
  });
  after(async () => {
    await cluster.close();
  });

  test('an unreachable agent is reported, refused operations change nothing, and state catches up after restart', async () => {
    const always = await cluster.client.machines.create('resilient', { config: { image: IMAGE, restart: { policy: 'always' } } });
    const never = await cluster.client.machines.create('resilient', { config: { image: IMAGE, restart: { policy: 'no' } } });
    const stopped = await cluster.client.machines.create('resilient', { config: { image: IMAGE }, skip_launch: true });

    await cluster.agents[0]!.close();
    await until('host_status unreachable', async () => (await cluster.client.machines.get('resilient', always.id)).host_status === 'unreachable', 10_000);
    await assert.rejects(cluster.client.machines.stop('resilient', always.id), (err: HangarError) => err.code === 'unavailable');
    assert.equal((await cluster.client.machines.get('resilient', always.id)).state, 'started', 'a refused stop changed nothing');
    await assert.rejects(
      cluster.client.machines.create('resilient', { config: { image: IMAGE } }),
      (err: HangarError) => err.code === 'insufficient_capacity' || err.code === 'unavailable',
    );
    const countWhileDown = (await cluster.client.machines.list('resilient')).length;
    assert.equal(countWhileDown, 3, 'a failed create left no machine behind');

    // A new FakeDriver is a rebooted host: every workload is gone.
    await cluster.restartAgent(0);
    await until('reconnect', async () => (await cluster.client.machines.get('resilient', always.id)).host_status === 'ok', 10_000);
    await cluster.client.machines.wait('resilient', always.id, { state: 'started', timeout: 10 });
    await cluster.client.machines.wait('resilient', never.id, { state: 'stopped', timeout: 10 });
    assert.equal((await cluster.client.machines.get('resilient', stopped.id)).state, 'created');
    const exits = (await cluster.client.machines.events('resilient', never.id)).filter((e) => e.type === 'exit');
    assert.equal(exits.length, 1, 'the lost workload was recorded as an exit');

    // And the restarted agent serves operations again.
    await cluster.client.machines.start('resilient', never.id);
    assert.equal((await cluster.client.machines.get('resilient', never.id)).state, 'started');
  });

  test('a machine the agent has but the catalog does not (a lost create) is destroyed on reconnect', async () => {
    const agent = cluster.agents[0]!;
    const spec = { id: 'abcdef01234567', name: 'orphan', app_name: 'resilient', org_slug: 'personal', org_id: 1, region: 'lcl', version: '01ARZ3NDEKTSV4RRFFQ69G5FAV', config: { image: IMAGE } };
    const made = await fetch(`${agent.url}/agent/v1/machines`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ spec, start: true }),
    });
    assert.equal(made.status, 200);
    await cluster.restartAgent(0);
    await until('the orphan to be destroyed', async () => {
      const res = await fetch(`${cluster.agents[0]!.url}/agent/v1/machines/${spec.id}`, { headers: { authorization: `Bearer ${agent.token}` } });
      return res.status === 404 || ((await res.json()) as { state: string }).state === 'destroyed';
    }, 10_000);
  });
});
