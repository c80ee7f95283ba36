import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { MACHINE_ID, VERSION, fakeMachine, runHangar, startFakeApi } from '../../testing.js';

describe('hangar machine list', () => {
  it('prints flyctl columns', async () => {
    const machines = [
      fakeMachine(),
      fakeMachine({ id: '9080e6d1c45e68', name: 'w2', state: 'stopped', private_ip: 'fdaa:0:1:a7b:1::3', image_ref: { registry: '', repository: 'library/redis', tag: '7', digest: '', labels: {} } }),
    ];
    const api = await startFakeApi({ 'GET /v1/apps/web/machines': { body: machines } });
    after(() => api.close());
    const t = await runHangar('machine list -a web', { api });
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, [
      '2 machines have been retrieved from app web.',
      '',
      'ID              NAME            STATE    REGION  IMAGE                 IP ADDRESS         CREATED               LAST UPDATED',
      '3d8d413b29d089  quirky-machine  started  ams     library/nginx:latest  fdaa:0:1:a7b:1::2  2024-05-01T12:00:00Z  2024-05-01T12:00:05Z',
      '9080e6d1c45e68  w2              stopped  ams     library/redis:7       fdaa:0:1:a7b:1::3  2024-05-01T12:00:00Z  2024-05-01T12:00:05Z',
      '',
    ].join('\n'));
    const json = await runHangar('machine ls -a web --json', { api });
    assert.deepEqual(JSON.parse(json.stdout), machines);
  });

  it('passes filters', async () => {
    const api = await startFakeApi({ 'GET /v1/apps/web/machines': { body: [] } });
    after(() => api.close());
    await runHangar('machine list -a web --state started,stopped --region ams --all', { api });
    const query = api.requests[0]!.query;
    assert.equal(query.get('state'), 'started,stopped');
    assert.equal(query.get('region'), 'ams');
    assert.equal(query.get('include_deleted'), 'true');
  });
});

describe('hangar machine status', () => {
  it('prints the machine and its events', async () => {
    const machine = fakeMachine({
      events: [
        { id: '2', type: 'start', status: 'started', source: 'flyd', timestamp: 1714564805000 },
        { id: '1', type: 'exit', status: 'stopped', source: 'flyd', timestamp: 1714564800000, request: { exit_event: { exit_code: 0, oom_killed: false, requested_stop: true } } },
      ],
    });
    const api = await startFakeApi({ [`GET /v1/apps/web/machines/${MACHINE_ID}`]: { body: machine } });
    after(() => api.close());
    const t = await runHangar(`machine status ${MACHINE_ID} -a web`, { api });
    assert.equal(t.code, 0, t.stderr);
    assert.equal(t.stdout, [
      `Machine ID: ${MACHINE_ID}`,
      `Instance ID: ${VERSION}`,
      'State: started',
      'HostStatus: ok',
      '',
      'VM',
      `  ID            = ${MACHINE_ID}`,
      `  Instance ID   = ${VERSION}`,
      '  State         = started',
      '  Image         = library/nginx:latest',
      '  Name          = quirky-machine',
      '  Private IP    = fdaa:0:1:a7b:1::2',
      '  Region        = ams',
      '  Process Group = app',
      '  CPU Kind      = shared',
      '  vCPUs         = 1',
      '  Memory        = 256',
      '  Created       = 2024-05-01T12:00:00Z',
      '  Updated       = 2024-05-01T12:00:05Z',
      '  Entrypoint    =',
      '  Command       =',
      '',
      'Event Logs',
      'STATE    EVENT  SOURCE  TIMESTAMP             INFO',
      'started  start  flyd    2024-05-01T12:00:05Z',
      'stopped  exit   flyd    2024-05-01T12:00:00Z  exit_code=0,oom_killed=false,requested_stop=true',
      '',
    ].join('\n'));
  });

  it('fetches events when the machine has none inline and prints the config with -d', async () => {
    const api = await startFakeApi({
      [`GET /v1/apps/web/machines/${MACHINE_ID}`]: { body: fakeMachine() },
      [`GET /v1/apps/web/machines/${MACHINE_ID}/events`]: { body: [{ id: '1', type: 'launch', status: 'created', source: 'user', timestamp: 1714564800000 }] },
    });
    after(() => api.close());
    const t = await runHangar(`machine status ${MACHINE_ID} -a web --display-config`, { api });
    assert.match(t.stdout, /\ncreated  launch  user    2024-05-01T12:00:00Z\n\nConfig:\n\{\n {2}"image": "nginx:latest",/);
  });
});
