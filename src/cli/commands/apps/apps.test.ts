import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { runHangar, startFakeApi } from '../../testing.js';

const APP = {
  id: 'z4k69dxd8r31p5mx', name: 'web', status: 'deployed', organization: { name: 'Personal', slug: 'personal', internal_numeric_id: 1 },
  network: 'default', network_cidr: 'fdaa:0:1::/48', internal_numeric_id: 7, machine_count: 2, volume_count: 0,
};

describe('hangar apps', () => {
  it('create posts name, org and network', async () => {
    const api = await startFakeApi({ 'POST /v1/apps': { status: 201, body: { id: 'z4k69dxd8r31p5mx', created_at: 1708631799000 } } });
    after(() => api.close());
    const t = await runHangar('apps create web --network blue', { api });
    assert.deepEqual(t, { code: 0, stdout: 'New app created: web\n', stderr: '' });
    assert.deepEqual(api.requests[0]!.body, { name: 'web', org_slug: 'personal', network: 'blue' });
    const json = await runHangar('app create --name api -o acme --json', { api });
    assert.deepEqual(JSON.parse(json.stdout), { id: 'z4k69dxd8r31p5mx', created_at: 1708631799000 });
    assert.deepEqual(api.requests[1]!.body, { name: 'api', org_slug: 'acme' });
  });

  it('create reports a taken name with a hint', async () => {
    const api = await startFakeApi({ 'POST /v1/apps': { status: 422, body: { error: 'app name web is already taken', status: 'name_taken' } } });
    after(() => api.close());
    const t = await runHangar('apps create web', { api });
    assert.equal(t.code, 1);
    assert.equal(t.stderr, 'Error: create app web: app name web is already taken\nHint: Choose another name, or see your apps with `hangar apps list`\n');
  });

  it('create needs a name', async () => {
    const t = await runHangar('apps create');
    assert.equal(t.stderr, 'Error: missing app NAME: usage `hangar apps create NAME`\nHint: Run `hangar apps create --help` for usage\n');
  });

  it('list prints a table, names only with -q, raw JSON with --json', async () => {
    const body = { total_apps: 2, apps: [{ ...APP, name: 'web' }, { ...APP, name: 'api', status: 'pending', machine_count: 0 }] };
    const api = await startFakeApi({ 'GET /v1/apps': { body } });
    after(() => api.close());
    const t = await runHangar('apps ls', { api });
    assert.equal(t.stdout, [
      'NAME  OWNER     STATUS    NETWORK  MACHINES',
      'api   personal  pending   default  0',
      'web   personal  deployed  default  2',
      '',
    ].join('\n'));
    assert.equal(api.requests[0]!.query.get('org_slug'), 'personal');
    assert.equal((await runHangar('apps list -q', { api })).stdout, 'api\nweb\n');
    assert.deepEqual(JSON.parse((await runHangar('apps list --json', { api })).stdout), body);
  });

  it('destroy needs --yes when it cannot ask', async () => {
    const api = await startFakeApi({ 'DELETE /v1/apps/web': { status: 202 } });
    after(() => api.close());
    const refused = await runHangar('apps destroy web', { api });
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr, 'Error: destroying app web needs confirmation\nHint: Re-run with --yes: `hangar apps destroy web --yes`\n');
    assert.equal(api.requests.length, 0);
    const t = await runHangar('apps rm web -y', { api });
    assert.deepEqual(t, { code: 0, stdout: 'Destroyed app web\n', stderr: '' });
    assert.equal(api.requests[0]!.query.get('force'), 'true');
  });

  it('destroy of a missing app says so', async () => {
    const api = await startFakeApi({ 'DELETE /v1/apps/nope': { status: 404, body: { error: 'app nope not found', status: 'not_found' } } });
    after(() => api.close());
    const t = await runHangar('apps destroy nope --yes', { api });
    assert.equal(t.stderr, 'Error: delete app nope: app nope not found\nHint: Run `hangar apps list` to see your apps\n');
  });
});
