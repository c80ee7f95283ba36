import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { MACHINE_ID, VERSION, fakeMachine, runHangar, startFakeApi } from '../../testing.js';

const BASE = `/v1/apps/web/machines/${MACHINE_ID}`;

describe('hangar machine stop', () => {
  it('signals, waits for the current version to stop and reports it', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`POST ${BASE}/stop`]: { body: { ok: true } },
      [`GET ${BASE}/wait`]: { body: { ok: true, state: 'stopped', event_id: '01HQEVENT', version: VERSION } },
    });
    after(() => api.close());
    const t = await runHangar(`machine stop ${MACHINE_ID} -a web`, { api });
    assert.deepEqual(t, {
      code: 0,
      stdout: `Sending kill signal to machine ${MACHINE_ID}...\n${MACHINE_ID} has been successfully stopped\n`,
      stderr: '',
    });
    assert.deepEqual(api.calls(), [`GET ${BASE}`, `POST ${BASE}/stop`, `GET ${BASE}/wait`]);
    assert.equal(api.requests[1]!.body, undefined);
    const wait = api.requests[2]!.query;
    assert.equal(wait.get('state'), 'stopped');
    assert.equal(wait.get('version'), VERSION);
    assert.equal(api.requests[1]!.headers.authorization, 'Bearer test-token');
  });

  it('sends --signal and --timeout in the body', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`POST ${BASE}/stop`]: { body: { ok: true } },
    });
    after(() => api.close());
    const t = await runHangar(`machine stop ${MACHINE_ID} -a web -s term --timeout 30 --detach`, { api });
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(api.requests[1]!.body, { signal: 'SIGTERM', timeout: '30s' });
  });

  it('keeps waiting through 408s until the machine stops', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`POST ${BASE}/stop`]: { body: { ok: true } },
      [`GET ${BASE}/wait`]: [
        { status: 408, body: { error: 'timed out waiting for machine to be stopped', status: 'timeout' } },
        { body: { ok: true, state: 'stopped', event_id: 'e', version: VERSION } },
      ],
    });
    after(() => api.close());
    const t = await runHangar(`machine stop ${MACHINE_ID} -a web`, { api });
    assert.equal(t.code, 0, t.stderr);
    assert.equal(api.calls().filter((c) => c.endsWith('/wait')).length, 2);
  });

  it('validates the signal and timeout before calling the API', async () => {
    const bad = await runHangar(`machine stop ${MACHINE_ID} -a web --signal SIGFOO`);
    assert.equal(bad.stderr, "Error: --signal: expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM, got 'SIGFOO'\n");
    const timeout = await runHangar(`machine stop ${MACHINE_ID} -a web --timeout soon`);
    assert.equal(timeout.stderr, "Error: --timeout: expected seconds or a duration such as 10s or 5m, got 'soon'\n");
  });

  it('stops several machines in order', async () => {
    const other = '9080e6d1c45e68';
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`GET /v1/apps/web/machines/${other}`]: { body: fakeMachine({ id: other }) },
      [`POST ${BASE}/stop`]: { body: { ok: true } },
      [`POST /v1/apps/web/machines/${other}/stop`]: { body: { ok: true } },
      [`GET ${BASE}/wait`]: { body: { ok: true, state: 'stopped' } },
      [`GET /v1/apps/web/machines/${other}/wait`]: { body: { ok: true, state: 'stopped' } },
    });
    after(() => api.close());
    const t = await runHangar(`m stop ${MACHINE_ID} ${other} -a web`, { api });
    assert.equal(t.stdout.split('\n').filter((l) => l.endsWith('successfully stopped')).length, 2);
  });

  it('explains a lease conflict', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`POST ${BASE}/stop`]: { status: 409, body: { error: `aborted: machine ID ${MACHINE_ID} lease currently held by deploy@hangar, expires at 2024-05-01T12:00:13Z`, status: 'lease_conflict' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine stop ${MACHINE_ID} -a web`, { api });
    assert.equal(t.code, 1);
    assert.equal(t.stderr, [
      `Error: stop machine ${MACHINE_ID} (app web): aborted: machine ID ${MACHINE_ID} lease currently held by deploy@hangar, expires at 2024-05-01T12:00:13Z`,
      'Hint: wait for the lease to expire or clear it with `hangar machine leases clear ID -a web`',
      '',
    ].join('\n'));
  });

  it('tells a missing app from a missing machine', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { status: 404, body: { error: 'app web not found', status: 'not_found' } },
      'GET /v1/apps/web': { status: 404, body: { error: 'app web not found', status: 'not_found' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine stop ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stderr, `Error: get machine ${MACHINE_ID} (app web): app web not found\nHint: Create it with \`hangar apps create web\`\n`);

    const api2 = await startFakeApi({
      [`GET ${BASE}`]: { status: 404, body: { error: `machine ${MACHINE_ID} not found`, status: 'not_found' } },
      'GET /v1/apps/web': { body: { name: 'web' } },
    });
    after(() => api2.close());
    const t2 = await runHangar(`machine stop ${MACHINE_ID} -a web`, { api: api2 });
    assert.equal(t2.stderr, `Error: get machine ${MACHINE_ID} (app web): machine ${MACHINE_ID} not found\nHint: Run \`hangar machine list -a web\` to see the app's machines\n`);
  });
});
