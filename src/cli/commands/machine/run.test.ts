import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { MACHINE_ID, VERSION, fakeMachine, runHangar, startFakeApi } from '../../testing.js';

const MACHINES = '/v1/apps/web/machines';

describe('hangar machine run', () => {
  it('creates the machine from flags and waits for it to start', async () => {
    const api = await startFakeApi({
      [`POST ${MACHINES}`]: { body: fakeMachine({ state: 'created' }) },
      [`GET ${MACHINES}/${MACHINE_ID}/wait`]: { body: { ok: true, state: 'started', event_id: 'e', version: VERSION } },
    });
    after(() => api.close());
    const t = await runHangar([
      'machine', 'run', 'nginx:latest', '-a', 'web', '--name', 'web-1', '-r', 'ams', '-e', 'A=1', '--env', 'B=two words',
      '-m', 'team=core', '--vm-size', 'shared-cpu-2x', '--vm-memory', '1024', '-p', '80:8080/tcp:http', '-p', '443:8080/tcp:http:tls',
      '--restart', 'always', '--entrypoint', '/docker-entrypoint.sh', '--', 'nginx', '-g', 'daemon off;',
    ], { api });
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, [
      'Success! A machine has been successfully launched in app web',
      ` Machine ID: ${MACHINE_ID}`,
      ` Instance ID: ${VERSION}`,
      ' State: created',
      '',
      ' Attempting to start machine...',
      '',
      'Machine started, you can connect via the following private ip',
      '  fdaa:0:1:a7b:1::2',
      '',
    ].join('\n'));
    assert.deepEqual(api.requests[0]!.body, {
      name: 'web-1',
      region: 'ams',
      config: {
        image: 'nginx:latest',
        env: { A: '1', B: 'two words' },
        metadata: { team: 'core' },
        guest: { cpu_kind: 'shared', cpus: 2, memory_mb: 1024 },
        services: [{ protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }, { port: 443, handlers: ['http', 'tls'] }] }],
        restart: { policy: 'always' },
        init: { entrypoint: ['/docker-entrypoint.sh'], cmd: ['nginx', '-g', 'daemon off;'] },
      },
    });
    const wait = api.requests[1]!.query;
    assert.equal(wait.get('state'), 'started');
    assert.equal(wait.get('version'), VERSION);
  });

  it('--rm sets auto_destroy and restart no; --detach does not wait', async () => {
    const api = await startFakeApi({ [`POST ${MACHINES}`]: { body: fakeMachine({ state: 'created' }) } });
    after(() => api.close());
    const t = await runHangar('machine run alpine -a web --rm --detach echo hi', { api });
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(api.requests[0]!.body, { config: { image: 'alpine', init: { cmd: ['echo', 'hi'] }, auto_destroy: true, restart: { policy: 'no' } } });
    assert.deepEqual(api.calls(), [`POST ${MACHINES}`]);
  });

  it('--json prints the started machine', async () => {
    const api = await startFakeApi({
      [`POST ${MACHINES}`]: { body: fakeMachine({ state: 'created' }) },
      [`GET ${MACHINES}/${MACHINE_ID}/wait`]: { body: { ok: true, state: 'started' } },
      [`GET ${MACHINES}/${MACHINE_ID}`]: { body: fakeMachine() },
    });
    after(() => api.close());
    const t = await runHangar('machine run nginx -a web --json', { api });
    assert.deepEqual(JSON.parse(t.stdout), fakeMachine());
  });

  it('validates flags before calling the API', async () => {
    const cases: [string, string][] = [
      ['--vm-memory abc', "Error: --vm-memory: expected a number of MiB, got 'abc'\n"],
      ['--vm-cpus 0', "Error: --vm-cpus: expected a number of vCPUs, got '0'\n"],
      ['-e NOEQUALS', "Error: --env: expected NAME=VALUE, got 'NOEQUALS'\n"],
      ['-p 80:http', "Error: --port: 'http' is not a port number 1-65535 in '80:http'; expected PORT[:MACHINE_PORT][/PROTOCOL[:HANDLER...]], e.g. 443:8080/tcp:http:tls\n"],
      ['--restart maybe', "Error: --restart: expected no, always or on-failure, got 'maybe'\n"],
      ['--wait-timeout forever', "Error: --wait-timeout: expected seconds or a duration such as 10s or 5m, got 'forever'\n"],
    ];
    for (const [flags, stderr] of cases) {
      const t = await runHangar(`machine run nginx -a web ${flags}`, { env: { HANGAR_API_URL: 'http://127.0.0.1:9', HANGAR_API_TOKEN: 't' } });
      assert.equal(t.stderr, stderr, flags);
      assert.equal(t.code, 1);
    }
  });

  it('reports capacity errors with a hint', async () => {
    const api = await startFakeApi({ [`POST ${MACHINES}`]: { status: 503, body: { error: 'no host in region syd', status: 'insufficient_capacity' } } });
    after(() => api.close());
    const t = await runHangar('machine run nginx -a web -r syd', { api });
    assert.equal(t.stderr, 'Error: create machine in app web: no host in region syd\nHint: Try a different region with --region, or a smaller --vm-size\n');
  });

  it('machine create skips the launch', async () => {
    const api = await startFakeApi({ [`POST ${MACHINES}`]: { body: fakeMachine({ state: 'created' }) } });
    after(() => api.close());
    const t = await runHangar('machine create nginx -a web --name web-2', { api });
    assert.equal(t.stdout, `Success! A machine has been successfully created in app web\n Machine ID: ${MACHINE_ID}\n Instance ID: ${VERSION}\n State: created\n`);
    assert.deepEqual(api.requests[0]!.body, { name: 'web-2', skip_launch: true, config: { image: 'nginx' } });
  });
});
