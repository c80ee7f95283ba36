/**
 * Real machines through the public API: the crun driver on a bridge of this file's own, images
 * pulled from a local registry, every response checked against Fly's OpenAPI document. Traffic
 * goes only to the machines' private addresses (and the loopback registry).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Machine, MachineEvent } from '../../src/api-types/machine.js';
import { crunClusterUnavailable, startCrunCluster, type CrunCluster } from '../../src/testkit/crun-cluster.js';
import { httpGet, leftovers, until, waitHttp } from './crun-helpers.js';

const unavailable = crunClusterUnavailable();
const APP = 'web';
/** The compressed form nslookup prints (private_ip is written Fly-style, without `::`). */
const short = (ipv6: string) => new URL(`http://[${ipv6}]/`).hostname.slice(1, -1);

describe('machines on crun through the API', { skip: unavailable, timeout: 240_000 }, () => {
  let c: CrunCluster;
  const client = () => c.cluster.client;
  const events = async (id: string, app = APP): Promise<MachineEvent[]> => client().machines.events(app, id);
  const run = (config: Record<string, unknown>, app = APP): Promise<Machine> =>
    client().machines.create(app, { config: { image: c.images.httpd, ...config }, region: 'lcl' } as never);

  before(async () => {
    c = await startCrunCluster({ tag: 'm' });
    await client().apps.create({ name: APP, org_slug: 'personal' });
  });
  after(async () => {
    await c?.close();
    assert.deepEqual(c?.cluster.contractProblems ?? [], [], 'every response matches the OpenAPI document');
  });

  test('create pulls from the local registry, starts, and the app answers HTTP on private_ip (IPv6)', async () => {
    const m = await run({});
    assert.equal(m.state, 'started');
    assert.deepEqual(
      { registry: m.image_ref.registry, repository: m.image_ref.repository, tag: m.image_ref.tag, digest: m.image_ref.digest },
      { registry: c.registryHost, repository: 'hello', tag: '1', digest: c.images.httpdDigest },
    );
    assert.match(m.private_ip, /^fdaa:/);
    assert.deepEqual(await waitHttp(m.private_ip), { status: 200, body: 'hello from hangar v1\n' });

    // stop / start
    await client().machines.stop(APP, m.id, { timeout: '5s' } as never);
    assert.equal((await client().machines.get(APP, m.id)).state, 'stopped');
    await assert.rejects(httpGet(m.private_ip, 8080, 300));
    await client().machines.start(APP, m.id);
    assert.equal((await client().machines.get(APP, m.id)).state, 'started');
    assert.equal((await waitHttp(m.private_ip)).body, 'hello from hangar v1\n');

    // exec and ps inside
    const exec = await client().machines.exec(APP, m.id, { command: ['sh', '-c', 'echo $FLY_MACHINE_ID; hostname'] });
    assert.equal(exec.exit_code, 0);
    assert.equal(exec.stdout, `${m.id}\n${m.id}\n`);
    const ps = await client().machines.ps(APP, m.id);
    assert.ok(ps.some((p) => p.command.includes('httpd')), JSON.stringify(ps));

    // suspend: frozen (no answer), then resumed by start
    await client().machines.suspend(APP, m.id);
    assert.equal((await client().machines.get(APP, m.id)).state, 'suspended');
    await assert.rejects(httpGet(m.private_ip, 8080, 500), /timeout/);
    const started = await client().machines.start(APP, m.id);
    assert.equal(started.previous_state, 'suspended');
    assert.equal((await waitHttp(m.private_ip)).body, 'hello from hangar v1\n');
    assert.ok((await events(m.id)).some((e) => e.type === 'suspend' && e.status === 'suspended'));

    // update: the new version runs the new config
    const updated = await client().machines.update(APP, m.id, { config: { image: c.images.httpdV2, env: { COLOR: 'blue' } } } as never);
    assert.notEqual(updated.version, m.version);
    await client().machines.wait(APP, m.id, { state: 'started', timeout: 10 });
    const now = await client().machines.get(APP, m.id);
    assert.equal(now.image_ref.tag, '2');
    assert.equal(now.image_ref.digest, c.images.httpdV2Digest);
    assert.equal((await waitHttp(now.private_ip)).body, 'hello from hangar v2\n');
    const env = await client().machines.exec(APP, m.id, { command: ['sh', '-c', 'echo $COLOR $FLY_MACHINE_VERSION'] });
    assert.equal(env.stdout, `blue ${updated.version}\n`);

    // destroy leaves the host clean
    await client().machines.delete(APP, m.id, { force: true });
    assert.deepEqual(await leftovers(c, m.id), []);
    await assert.rejects(httpGet(m.private_ip, 8080, 300));
  });

  test('restart on-failure: an app exiting 1 is restarted max_retries times, then stays stopped', async () => {
    const m = await run({ init: { exec: ['sh', '-c', 'echo boom; exit 1'] }, restart: { policy: 'on-failure', max_retries: 2 } });
    const exits = await until('three exit events and a stopped machine', async () => {
      const evs = (await events(m.id)).filter((e) => e.type === 'exit');
      const state = (await client().machines.get(APP, m.id)).state;
      return evs.length >= 3 && state === 'stopped' ? evs : undefined;
    }, 20_000);
    assert.equal(exits.length, 3, JSON.stringify(exits));
    for (const e of exits) assert.equal((e.request as { exit_event: { exit_code: number } }).exit_event.exit_code, 1);
    // newest first: the last exit does not restart
    assert.equal((exits[0]!.request as { exit_event: { restarting: boolean } }).exit_event.restarting, false);
    assert.equal((await events(m.id)).filter((e) => e.type === 'restart').length, 2);

    // logs through the API: one "boom" per run
    const lines: string[] = [];
    for await (const entry of client().logs(APP, { machine: m.id, tail: 50 })) {
      assert.equal(entry.machine_id, m.id);
      lines.push(`${entry.stream}:${entry.message}`);
    }
    assert.ok(lines.filter((l) => l === 'stdout:boom').length >= 1, lines.join('\n'));
    await client().machines.delete(APP, m.id, { force: true });
    assert.deepEqual(await leftovers(c, m.id), []);
  });

  test('restart always: an app that exits 0 comes back; stop ends it for good', async () => {
    const m = await run({ init: { exec: ['sh', '-c', 'sleep 0.3; exit 0'] }, restart: { policy: 'always' } });
    await until('a restart after a clean exit', async () => ((await events(m.id)).some((e) => e.type === 'restart' && e.status === 'started') ? true : undefined), 10_000);
    await client().machines.stop(APP, m.id);
    const stopped = await client().machines.wait(APP, m.id, { state: 'stopped', timeout: 5 });
    assert.equal(stopped.state, 'stopped');
    await new Promise((r) => setTimeout(r, 800));
    assert.equal((await client().machines.get(APP, m.id)).state, 'stopped', 'a user stop is not undone by the policy');
    await client().machines.delete(APP, m.id);
    assert.deepEqual(await leftovers(c, m.id), []);
  });

  test('auto_destroy with restart no: the machine is destroyed after its exit and leaves nothing', async () => {
    const m = await run({ init: { exec: ['sh', '-c', 'sleep 0.2; exit 0'] }, auto_destroy: true, restart: { policy: 'no' } });
    await client().machines.wait(APP, m.id, { state: 'destroyed', timeout: 10 });
    assert.deepEqual(await leftovers(c, m.id), []);
  });

  test('.internal names resolve inside a machine; another org can neither resolve nor reach it', async () => {
    const a = await run({});
    const b = await run({ init: { exec: ['sleep', '1000'] } });
    const look = async (id: string, name: string, app = APP) =>
      client().machines.exec(app, id, { command: ['nslookup', '-type=AAAA', name], timeout: 10 });
    const all = await look(b.id, `${APP}.internal`);
    assert.equal(all.exit_code, 0, all.stdout + all.stderr);
    assert.ok(all.stdout.includes(short(a.private_ip)) && all.stdout.includes(short(b.private_ip)), all.stdout);
    const one = await look(b.id, `${a.id}.vm.${APP}.internal`);
    assert.ok(one.stdout.includes(short(a.private_ip)) && !one.stdout.includes(short(b.private_ip)), one.stdout);
    // busybox wget crashes on IPv6 literals (static glibc); nc speaks HTTP/1.0 well enough.
    const get = (app: string, from: string, ip: string) =>
      client().machines.exec(app, from, { command: ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 8080`], timeout: 10 });
    const fetched = await get(APP, b.id, a.private_ip);
    assert.ok(fetched.stdout.endsWith('hello from hangar v1\n'), JSON.stringify(fetched));

    // Names follow start/stop: a stopped machine drops out of the answers and comes back on start.
    await client().machines.stop(APP, a.id);
    await client().machines.wait(APP, a.id, { state: 'stopped', timeout: 10 });
    const withoutA = await look(b.id, `${APP}.internal`);
    assert.ok(!withoutA.stdout.includes(short(a.private_ip)) && withoutA.stdout.includes(short(b.private_ip)), withoutA.stdout);
    assert.notEqual((await look(b.id, `${a.id}.vm.${APP}.internal`)).exit_code, 0, 'a stopped machine does not resolve');
    await client().machines.start(APP, a.id);
    await client().machines.wait(APP, a.id, { state: 'started', timeout: 10 });
    assert.ok((await look(b.id, `${a.id}.vm.${APP}.internal`)).stdout.includes(short(a.private_ip)), 'resolves again once started');

    await c.cluster.store.createOrg('other', 'Other');
    await client().apps.create({ name: 'intruder', org_slug: 'other' });
    const x = await client().machines.create('intruder', { config: { image: c.images.httpd, init: { exec: ['sleep', '1000'] } }, region: 'lcl' } as never);
    const theirs = await look(x.id, `${APP}.internal`, 'intruder');
    assert.ok(!theirs.stdout.includes(short(a.private_ip)), theirs.stdout);
    assert.notEqual(theirs.exit_code, 0, 'another org gets no answer for our app');
    const blocked = await get('intruder', x.id, a.private_ip);
    assert.equal(blocked.stdout, '', 'another org cannot reach the machine');

    for (const [app, id] of [[APP, a.id], [APP, b.id], ['intruder', x.id]] as const) {
      await client().machines.delete(app, id, { force: true });
      assert.deepEqual(await leftovers(c, id), []);
    }
  });
});
