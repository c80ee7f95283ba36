/**
 * Host reboot and agent crash with real containers, through the API. A reboot is simulated the
 * way it looks to the next agent: every container and its shim gone without an exit status, the
 * overlays unmounted, the machines' namespaces, the bridge and the nft tables gone. The agent then
 * restarts on the same data dir with a new driver instance.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Machine } from '../../src/api-types/machine.js';
import type { CrunDriver } from '../../src/agent/drivers/crun/crun-driver.js';
import { mountsUnder } from '../../src/agent/images/overlay.js';
import { crunClusterUnavailable, startCrunCluster, type CrunCluster } from '../../src/testkit/crun-cluster.js';
import { httpGet, leftovers, until, waitHttp } from './crun-helpers.js';

const unavailable = crunClusterUnavailable();
const APP = 'boot';

describe('host reboot and agent crash on crun', { skip: unavailable, timeout: 180_000 }, () => {
  let c: CrunCluster;
  const client = () => c.cluster.client;
  const run = (config: Record<string, unknown>): Promise<Machine> =>
    client().machines.create(APP, { config: { image: c.images.httpd, ...config }, region: 'lcl' } as never);
  const state = async (id: string) => (await client().machines.get(APP, id)).state;

  before(async () => {
    c = await startCrunCluster({ tag: 'r' });
    await client().apps.create({ name: APP, org_slug: 'personal' });
  });
  after(async () => {
    await c?.close();
    assert.deepEqual(c?.cluster.contractProblems ?? [], [], 'every response matches the OpenAPI document');
  });

  test('after a reboot, machines come back per their restart policy', async () => {
    const always = await run({ restart: { policy: 'always' } });
    const byDefault = await run({});
    const no = await run({ restart: { policy: 'no' } });
    const stopped = await run({});
    await client().machines.stop(APP, stopped.id);
    for (const m of [always, byDefault, no]) assert.equal((await waitHttp(m.private_ip)).status, 200);

    const agent = c.cluster.agents[0]!;
    const runtime = (agent.driver as CrunDriver).runtime;
    await c.cluster.restartAgent(0, {
      newDriver: c.newDriver,
      whileDown: async () => {
        // What a reboot leaves: no shim, no container, no exit status, no mounts, no namespaces.
        const machinesDir = join(agent.dataDir, 'machines');
        for (const id of readdirSync(machinesDir)) {
          const runJson = join(machinesDir, id, 'run', 'run.json');
          let shim = 0;
          try {
            shim = (JSON.parse(readFileSync(runJson, 'utf8')) as { shim_pid: number }).shim_pid;
          } catch {
            // never ran
          }
          if (shim > 0) {
            try {
              process.kill(shim, 'SIGKILL');
            } catch {
              // gone already
            }
          }
        }
        for (const container of await runtime.list()) {
          await runtime.exec(['kill', container.id, 'KILL']);
          await runtime.exec(['delete', '--force', container.id]);
        }
        for (const id of readdirSync(machinesDir)) {
          rmSync(join(machinesDir, id, 'run', 'exit-code'), { force: true });
          for (const mount of await mountsUnder(join(machinesDir, id))) spawnSync('umount', ['-l', mount]);
        }
        for (const ns of readdirSync('/var/run/netns').filter((n) => n.startsWith(c.network.netnsPrefix))) spawnSync('ip', ['netns', 'del', ns]);
        spawnSync('ip', ['link', 'del', c.network.bridge]);
        spawnSync('nft', ['delete', 'table', 'bridge', c.network.nftTable]);
        spawnSync('nft', ['delete', 'table', 'inet', c.network.nftTable]);
      },
    });

    for (const m of [always, byDefault]) {
      await client().machines.wait(APP, m.id, { state: 'started', timeout: 20 });
      assert.equal((await waitHttp(m.private_ip, 10_000)).body, 'hello from hangar v1\n', `${m.id} answers again`);
    }
    await until('the "no" machine to settle', async () => ((await state(no.id)) === 'stopped' ? true : undefined));
    const exit = (await client().machines.events(APP, no.id)).find((e) => e.type === 'exit');
    assert.ok(exit, 'the no-restart machine has an exit event');
    assert.equal((exit!.request as { exit_event: { exit_code: number } }).exit_event.exit_code, 137);
    await assert.rejects(httpGet(no.private_ip, 8080, 300));
    assert.equal(await state(stopped.id), 'stopped', 'a stopped machine stays stopped');

    // and they all still work: start the stopped ones
    await client().machines.start(APP, stopped.id);
    assert.equal((await waitHttp(stopped.private_ip)).status, 200);
    for (const m of [always, byDefault, no, stopped]) {
      await client().machines.delete(APP, m.id, { force: true });
      assert.deepEqual(await leftovers(c, m.id), []);
    }
  });

  test('after an agent crash, running containers are re-attached, not restarted', async () => {
    const m = await run({});
    await waitHttp(m.private_ip);
    assert.equal((await client().machines.exec(APP, m.id, { command: ['touch', '/still-here'] })).exit_code, 0);
    const eventsBefore = (await client().machines.events(APP, m.id)).length;
    await c.cluster.restartAgent(0, { newDriver: c.newDriver });
    assert.equal(await state(m.id), 'started');
    assert.equal((await waitHttp(m.private_ip)).status, 200);
    // A restarted machine would be a blank slate: the file proves the same run goes on.
    assert.equal((await client().machines.exec(APP, m.id, { command: ['ls', '/still-here'] })).exit_code, 0);
    assert.equal((await client().machines.events(APP, m.id)).length, eventsBefore, 'no new events');
    // the re-attached run is fully managed: stop reaches it
    await client().machines.stop(APP, m.id);
    await assert.rejects(httpGet(m.private_ip, 8080, 300));
    await client().machines.delete(APP, m.id);
    assert.deepEqual(await leftovers(c, m.id), []);
  });
});
