import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { MACHINE_ID, VERSION, fakeMachine, runHangar, startFakeApi } from '../../testing.js';

const BASE = `/v1/apps/web/machines/${MACHINE_ID}`;

describe('hangar machine exec', () => {
  it('prints stdout and stderr and exits with the remote exit code', async () => {
    const api = await startFakeApi({ [`POST ${BASE}/exec`]: { body: { stdout: 'hello\n', stderr: 'warn\n', exit_code: 3, exit_signal: 0 } } });
    after(() => api.close());
    const t = await runHangar([`machine`, 'exec', MACHINE_ID, `sh -c 'echo hello; exit 3'`, '-a', 'web', '--timeout', '5'], { api });
    assert.deepEqual(t, { code: 3, stdout: 'hello\n', stderr: 'warn\n' });
    assert.deepEqual(api.requests[0]!.body, { command: ['sh', '-c', 'echo hello; exit 3'], timeout: 5 });
  });

  it('passes several words as argv', async () => {
    const api = await startFakeApi({ [`POST ${BASE}/exec`]: { body: { stdout: '', stderr: '', exit_code: 0, exit_signal: 0 } } });
    after(() => api.close());
    const t = await runHangar(`machine exec ${MACHINE_ID} -a web -- ls -la /`, { api });
    assert.equal(t.code, 0);
    assert.deepEqual(api.requests[0]!.body, { command: ['ls', '-la', '/'] });
  });

  it('a command killed at its timeout is an error with the hint, exit code 1', async () => {
    const message = 'exec: ["sleep","300"] did not finish within 1s and was killed; it printed nothing. Pass a longer timeout (up to 3600 seconds) or start long jobs in the background';
    const api = await startFakeApi({ [`POST ${BASE}/exec`]: { status: 408, body: { error: message, status: 'timeout' } } });
    after(() => api.close());
    const t = await runHangar(`machine exec ${MACHINE_ID} -a web --timeout 1 -- sleep 300`, { api });
    assert.equal(t.code, 1);
    assert.match(t.stderr, /did not finish within 1s and was killed/);
    assert.match(t.stderr, /--timeout SECONDS/);
  });

  it('requires a command', async () => {
    const t = await runHangar(`machine exec ${MACHINE_ID} -a web`);
    assert.equal(t.stderr, "Error: missing COMMAND: usage `hangar machine exec ID 'command'`\n");
  });
});

describe('hangar machine update', () => {
  it('reads the config, applies flags and posts it with current_version', async () => {
    const updated = fakeMachine({ version: '01HQ73A7BFFDF1B6WMGHFZZ4E8' });
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine({ config: { image: 'nginx:1.25', env: { A: '1' }, guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 256 } } }) },
      [`POST ${BASE}`]: { body: updated },
      [`GET ${BASE}/wait`]: { body: { ok: true, state: 'started' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine update ${MACHINE_ID} -a web --image nginx:1.27 -e B=2 --vm-memory 512 -y`, { api });
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(api.requests[1]!.body, {
      config: { image: 'nginx:1.27', env: { A: '1', B: '2' }, guest: { cpu_kind: 'shared', cpus: 1, memory_mb: 512 } },
      current_version: VERSION,
    });
    assert.equal(api.requests[2]!.query.get('version'), '01HQ73A7BFFDF1B6WMGHFZZ4E8');
    assert.equal(t.stdout, [
      `Configuration changes to be applied to machine: ${MACHINE_ID} (web)`,
      '',
      '-  "image": "nginx:1.25",',
      '+  "image": "nginx:1.27",',
      '-    "A": "1"',
      '+    "A": "1",',
      '+    "B": "2"',
      '-    "memory_mb": 256',
      '+    "memory_mb": 512',
      '',
      `Updating machine ${MACHINE_ID}`,
      `  Waiting for ${MACHINE_ID} to have state: started`,
      `Machine ${MACHINE_ID} updated successfully!`,
      '',
    ].join('\n'));
  });

  it('--skip-start sends skip_launch and does not wait', async () => {
    const api = await startFakeApi({ [`GET ${BASE}`]: { body: fakeMachine() }, [`POST ${BASE}`]: { body: fakeMachine() } });
    after(() => api.close());
    const t = await runHangar(`machine update ${MACHINE_ID} -a web -C 'nginx -g "daemon off;"' --skip-start -y`, { api });
    assert.equal(t.code, 0, t.stderr);
    const body = api.requests[1]!.body as { skip_launch: boolean; config: { init: unknown } };
    assert.equal(body.skip_launch, true);
    assert.deepEqual(body.config.init, { cmd: ['nginx', '-g', 'daemon off;'] });
    assert.equal(api.requests.length, 2);
  });

  it('reports a version conflict with a hint', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`POST ${BASE}`]: { status: 409, body: { error: 'current_version 01HQ... does not match', status: 'version_conflict' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine update ${MACHINE_ID} -a web --image x -y`, { api });
    assert.match(t.stderr, /\nHint: The machine changed while this update was prepared; run the command again\n$/);
  });

  it('says when there is nothing to change', async () => {
    const api = await startFakeApi({ [`GET ${BASE}`]: { body: fakeMachine() } });
    after(() => api.close());
    const t = await runHangar(`machine update ${MACHINE_ID} -a web --image nginx:latest -y`, { api });
    assert.equal(t.stdout, `No changes to apply to machine ${MACHINE_ID} (web)\n`);
  });
});

describe('hangar machine clone', () => {
  it('creates a machine with the source config in another region', async () => {
    const clone = fakeMachine({ id: '9080e6d1c45e68', region: 'fra' });
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      ['POST /v1/apps/web/machines']: { body: clone },
      ['GET /v1/apps/web/machines/9080e6d1c45e68/wait']: { body: { ok: true, state: 'started' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine clone ${MACHINE_ID} -a web --region fra --name copy`, { api });
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(api.requests[1]!.body, { config: fakeMachine().config, region: 'fra', name: 'copy' });
    assert.match(t.stdout, /^Cloning machine 3d8d413b29d089 into region fra\n[\s\S]*Machine has been successfully cloned!\n$/);
  });
});

describe('hangar machine leases', () => {
  const lease = { nonce: '5c35f65c9f95', expires_at: 4102444800, owner: 'deploy@hangar', description: 'deploy', version: VERSION };

  it('view shows the lease', async () => {
    const api = await startFakeApi({ [`GET ${BASE}/lease`]: { body: { status: 'success', data: lease } } });
    after(() => api.close());
    const t = await runHangar(`machine leases view ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, [
      'MACHINE         NONCE         STATUS  OWNER          DESCRIPTION  EXPIRES',
      `${MACHINE_ID}  5c35f65c9f95  active  deploy@hangar  deploy       2100-01-01T00:00:00Z`,
      '',
    ].join('\n'));
  });

  it('view says when there is no lease', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}/lease`]: { status: 404, body: { error: 'no lease', status: 'not_found' } },
      [`GET ${BASE}`]: { body: fakeMachine() },
    });
    after(() => api.close());
    const t = await runHangar(`machine lease view ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, 'No leases found\n');
  });

  it('clear releases with the nonce', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}/lease`]: { body: { status: 'success', data: lease } },
      [`DELETE ${BASE}/lease`]: { body: { status: 'success', data: { ok: true } } },
    });
    after(() => api.close());
    const t = await runHangar(`machine leases clear ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, `removing lease for machine ${MACHINE_ID}\nmachine ${MACHINE_ID} lease cleared\n`);
    assert.equal(api.requests[1]!.headers['fly-machine-lease-nonce'], '5c35f65c9f95');
  });
});
