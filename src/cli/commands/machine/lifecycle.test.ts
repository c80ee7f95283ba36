import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { MACHINE_ID, VERSION, fakeMachine, runHangar, startFakeApi } from '../../testing.js';

const BASE = `/v1/apps/web/machines/${MACHINE_ID}`;

describe('hangar machine start|restart|suspend|kill|destroy|cordon|uncordon', () => {
  it('start', async () => {
    const api = await startFakeApi({ [`POST ${BASE}/start`]: { body: { previous_state: 'stopped', migrated: false, new_host: '' } } });
    after(() => api.close());
    const t = await runHangar(`machine start ${MACHINE_ID} -a web`, { api });
    assert.deepEqual(t, { code: 0, stdout: `${MACHINE_ID} has been started\n`, stderr: '' });
  });

  it('start of a running machine explains the state', async () => {
    const api = await startFakeApi({
      [`POST ${BASE}/start`]: { status: 412, body: { error: `unable to start machine ${MACHINE_ID} from state 'started': stop it first, or wait for it to settle`, status: 'failed_precondition' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine start ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stderr, `Error: start machine ${MACHINE_ID} (app web): unable to start machine ${MACHINE_ID} from state 'started': stop it first, or wait for it to settle\nHint: Check its state with \`hangar machine status ID -a web\`\n`);
  });

  it('restart passes signal and timeout and waits for started', async () => {
    const api = await startFakeApi({
      [`POST ${BASE}/restart`]: { body: { ok: true } },
      [`GET ${BASE}/wait`]: { body: { ok: true, state: 'started' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine restart ${MACHINE_ID} -a web --signal SIGTERM --timeout 10s`, { api });
    assert.equal(t.stdout, `Restarting machine ${MACHINE_ID}\nMachine ${MACHINE_ID} restarted successfully!\n`);
    assert.equal(api.requests[0]!.query.get('signal'), 'SIGTERM');
    assert.equal(api.requests[0]!.query.get('timeout'), '10s');
    assert.equal(api.requests[1]!.query.get('state'), 'started');
  });

  it('suspend waits for suspended', async () => {
    const api = await startFakeApi({
      [`POST ${BASE}/suspend`]: { body: { ok: true } },
      [`GET ${BASE}/wait`]: { body: { ok: true, state: 'suspended' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine suspend ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, `Suspending machine ${MACHINE_ID}...\nMachine ${MACHINE_ID} suspended\n`);
    assert.equal(api.requests[1]!.query.get('state'), 'suspended');
  });

  it('kill sends signal 9 as a number', async () => {
    const api = await startFakeApi({ [`GET ${BASE}`]: { body: fakeMachine() }, [`POST ${BASE}/signal`]: { body: { ok: true } } });
    after(() => api.close());
    const t = await runHangar(`machine kill ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, `machine ${MACHINE_ID} was found and is currently in a started state, attempting to kill...\nkill signal has been sent\n`);
    assert.deepEqual(api.requests[1]!.body, { signal: 9 });
  });

  it('destroy, with and without --force', async () => {
    const api = await startFakeApi({ [`GET ${BASE}`]: { body: fakeMachine({ state: 'stopped' }) }, [`DELETE ${BASE}`]: { body: { ok: true } } });
    after(() => api.close());
    const t = await runHangar(`machine rm ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, `machine ${MACHINE_ID} was found and is currently in stopped state, attempting to destroy...\n${MACHINE_ID} has been destroyed\n`);
    assert.equal(api.requests[1]!.query.get('force'), null);
    await runHangar(`machine destroy ${MACHINE_ID} -a web --force`, { api });
    assert.equal(api.requests[3]!.query.get('force'), 'true');
  });

  it('destroy of a started machine suggests stop or --force', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`DELETE ${BASE}`]: { status: 412, body: { error: `unable to destroy machine ${MACHINE_ID} from state 'started': stop it first, or destroy with force=true`, status: 'failed_precondition' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine remove ${MACHINE_ID} -a web`, { api });
    assert.equal(t.code, 1);
    assert.match(t.stderr, /\nHint: Stop it first with `hangar machine stop ID -a web`, or use --force\n$/);
  });

  it('cordon and uncordon', async () => {
    const api = await startFakeApi({ [`POST ${BASE}/cordon`]: { body: { ok: true } }, [`POST ${BASE}/uncordon`]: { body: { ok: true } } });
    after(() => api.close());
    assert.equal((await runHangar(`machine cordon ${MACHINE_ID} -a web`, { api })).stdout, `Machine ${MACHINE_ID} cordoned\n`);
    assert.equal((await runHangar(`machine uncordon ${MACHINE_ID} -a web`, { api })).stdout, `Machine ${MACHINE_ID} uncordoned\n`);
  });

  it('wait defaults to settled and reports the state', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`GET ${BASE}/wait`]: { body: { ok: true, state: 'started', event_id: 'e', version: VERSION } },
    });
    after(() => api.close());
    const t = await runHangar(`machine wait ${MACHINE_ID} -a web`, { api });
    assert.equal(t.stdout, `Machine ${MACHINE_ID} reached state started\n`);
    assert.equal(t.stderr, `Waiting up to 5m for machine ${MACHINE_ID} to be settled...\n`);
    assert.equal(api.requests[1]!.query.get('state'), 'settled');
    assert.equal(api.requests[1]!.query.get('timeout'), '60');
  });

  it('wait gives up after --wait-timeout', async () => {
    const api = await startFakeApi({
      [`GET ${BASE}`]: { body: fakeMachine() },
      [`GET ${BASE}/wait`]: { status: 408, body: { error: 'timed out', status: 'timeout' } },
    });
    after(() => api.close());
    const t = await runHangar(`machine wait ${MACHINE_ID} -a web --state stopped --wait-timeout 1s`, { api });
    assert.equal(t.code, 1);
    assert.equal(t.stderr.split('\n').slice(1).join('\n'), `Error: machine ${MACHINE_ID} (app web) did not reach state stopped within 1s\nHint: Wait longer with --wait-timeout, or look at \`hangar machine status ID -a web\`\n`);
    assert.equal(api.requests[1]!.query.get('timeout'), '1');
  });

  it('wait rejects unknown states', async () => {
    const t = await runHangar(`machine wait ${MACHINE_ID} -a web --state running`);
    assert.equal(t.stderr, "Error: --state: expected one of started, stopped, suspended, destroyed, failed, created, settled, got 'running'\n");
  });
});
