import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HangarError } from '../core/errors.js';
import { HangarClient, type ResponseInfo } from './client.js';
import { HangarApiError, HangarNetworkError } from './errors.js';

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A fake fetch that records requests and answers from a queue of [status, body] pairs. */
function fakeFetch(answers: [number, unknown, Record<string, string>?][]) {
  const sent: Sent[] = [];
  const fetch = async (input: string, init: RequestInit): Promise<Response> => {
    sent.push({
      method: String(init.method),
      url: input,
      headers: init.headers as Record<string, string>,
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
    });
    const [status, body, headers] = answers.shift() ?? [200, {}];
    const text = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status, headers: { 'content-type': 'application/json', ...headers } });
  };
  return { fetch, sent };
}

function clientWith(answers: [number, unknown, Record<string, string>?][]) {
  const { fetch, sent } = fakeFetch(answers);
  const responses: ResponseInfo[] = [];
  const client = new HangarClient({ baseUrl: 'http://api.test/', token: 'tok_123', fetch, onResponse: (r) => responses.push(r) });
  return { client, sent, responses };
}

const ID = '3d8d413b29d089';

describe('HangarClient requests', () => {
  it('sends the bearer token and builds /v1 URLs', async () => {
    const { client, sent, responses } = clientWith([[200, { total_apps: 0, apps: [] }]]);
    const result = await client.apps.list('personal');
    assert.deepEqual(result, { total_apps: 0, apps: [] });
    assert.equal(sent[0]!.url, 'http://api.test/v1/apps?org_slug=personal');
    assert.equal(sent[0]!.headers.authorization, 'Bearer tok_123');
    assert.equal(responses[0]!.path, '/v1/apps');
    assert.equal(responses[0]!.method, 'GET');
    assert.equal(responses[0]!.status, 200);
  });

  it('tolerates a base URL that already ends in /v1', async () => {
    const { fetch, sent } = fakeFetch([[200, {}]]);
    await new HangarClient({ baseUrl: 'http://api.test/v1', fetch }).platform.regions();
    assert.equal(sent[0]!.url, 'http://api.test/v1/platform/regions');
    assert.equal(sent[0]!.headers.authorization, undefined);
  });

  it('creates apps with name, org_slug and network', async () => {
    const { client, sent } = clientWith([[201, { id: 'abc', created_at: 1 }]]);
    await client.apps.create({ name: 'web', network: 'blue' });
    assert.deepEqual(sent[0]!.body, { name: 'web', org_slug: 'personal', network: 'blue' });
    assert.equal(sent[0]!.headers['content-type'], 'application/json');
  });

  it('deletes apps with force', async () => {
    const { client, sent, responses } = clientWith([[202, undefined]]);
    await client.apps.delete('web', { force: true });
    assert.equal(sent[0]!.url, 'http://api.test/v1/apps/web?force=true');
    assert.equal(responses[0]!.path, '/v1/apps/{app_name}');
    assert.equal(responses[0]!.body, undefined);
  });

  it('lists machines with filters and metadata.<key> query parameters', async () => {
    const { client, sent, responses } = clientWith([[200, []]]);
    await client.machines.list('web', { region: 'ams', state: ['started', 'stopped'], include_deleted: true, summary: true, metadata: { fly_process_group: 'app' } });
    const url = new URL(sent[0]!.url);
    assert.equal(url.pathname, '/v1/apps/web/machines');
    assert.equal(url.searchParams.get('region'), 'ams');
    assert.equal(url.searchParams.get('state'), 'started,stopped');
    assert.equal(url.searchParams.get('include_deleted'), 'true');
    assert.equal(url.searchParams.get('summary'), 'true');
    assert.equal(url.searchParams.get('metadata.fly_process_group'), 'app');
    assert.equal(responses[0]!.path, '/v1/apps/{app_name}/machines');
  });

  it('sends the lease nonce header on lease-protected calls', async () => {
    const { client, sent, responses } = clientWith([[200, { previous_state: 'stopped' }], [200, { ok: true }], [200, {}], [200, {}]]);
    const started = await client.machines.start('web', ID, { nonce: 'n1' });
    assert.equal(started.previous_state, 'stopped');
    await client.machines.stop('web', ID, { signal: 'SIGTERM', timeout: 10, nonce: 'n2' });
    await client.machines.update('web', ID, { config: { image: 'nginx' }, current_version: 'v1' }, { nonce: 'n3' });
    await client.machines.delete('web', ID, { force: true, nonce: 'n4' });
    assert.deepEqual(sent.map((s) => s.headers['fly-machine-lease-nonce']), ['n1', 'n2', 'n3', 'n4']);
    assert.deepEqual(sent[1]!.body, { signal: 'SIGTERM', timeout: '10s' });
    assert.equal(sent[3]!.url, `http://api.test/v1/apps/web/machines/${ID}?force=true&kill=true`);
    assert.deepEqual(responses.map((r) => r.path), [
      '/v1/apps/{app_name}/machines/{machine_id}/start',
      '/v1/apps/{app_name}/machines/{machine_id}/stop',
      '/v1/apps/{app_name}/machines/{machine_id}',
      '/v1/apps/{app_name}/machines/{machine_id}',
    ]);
  });

  it('stop without options sends no body', async () => {
    const { client, sent } = clientWith([[200, { ok: true }]]);
    await client.machines.stop('web', ID);
    assert.equal(sent[0]!.body, undefined);
    assert.equal(sent[0]!.headers['fly-machine-lease-nonce'], undefined);
  });

  it('restart passes signal and timeout in the query', async () => {
    const { client, sent } = clientWith([[200, {}]]);
    await client.machines.restart('web', ID, { signal: 'SIGUSR1', timeout: '5s' });
    assert.equal(sent[0]!.url, `http://api.test/v1/apps/web/machines/${ID}/restart?signal=SIGUSR1&timeout=5s`);
  });

  it('signal accepts names and numbers', async () => {
    const { client, sent } = clientWith([[200, {}], [200, {}]]);
    await client.machines.signal('web', ID, 9);
    await client.machines.signal('web', ID, 'SIGUSR1');
    assert.deepEqual(sent.map((s) => s.body), [{ signal: 9 }, { signal: 'SIGUSR1' }]);
  });

  it('wait repeats state and passes timeout, version and from_event_id', async () => {
    const { client, sent, responses } = clientWith([[200, { ok: true, state: 'stopped', event_id: 'e', version: 'v' }]]);
    const result = await client.machines.wait('web', ID, { state: ['stopped', 'failed'], timeout: 30, version: 'V1', from_event_id: 'E1' });
    assert.equal(result.state, 'stopped');
    assert.equal(sent[0]!.url, `http://api.test/v1/apps/web/machines/${ID}/wait?state=stopped&state=failed&timeout=30&version=V1&from_event_id=E1`);
    assert.equal(responses[0]!.path, '/v1/apps/{app_name}/machines/{machine_id}/wait');
  });

  it('exec sends command, stdin and timeout', async () => {
    const { client, sent } = clientWith([[200, { stdout: 'hi\n', stderr: '', exit_code: 0, exit_signal: 0 }]]);
    const result = await client.machines.exec('web', ID, { command: ['echo', 'hi'], stdin: 'x', timeout: 5 });
    assert.equal(result.stdout, 'hi\n');
    assert.deepEqual(sent[0]!.body, { command: ['echo', 'hi'], stdin: 'x', timeout: 5 });
  });

  it('events, versions, ps, cordon, uncordon, suspend hit their paths', async () => {
    const { client, responses } = clientWith([[200, []], [200, []], [200, []], [200, {}], [200, {}], [200, {}]]);
    await client.machines.events('web', ID, { limit: 5 });
    await client.machines.versions('web', ID);
    await client.machines.ps('web', ID);
    await client.machines.cordon('web', ID);
    await client.machines.uncordon('web', ID);
    await client.machines.suspend('web', ID);
    assert.deepEqual(responses.map((r) => `${r.method} ${r.path.split('/').pop()}`), [
      'GET events', 'GET versions', 'GET ps', 'POST cordon', 'POST uncordon', 'POST suspend',
    ]);
  });

  it('unwraps leases and sends the nonce to refresh and release', async () => {
    const lease = { nonce: 'abc', expires_at: 1, owner: 'me', description: 'd', version: 'v' };
    const { client, sent } = clientWith([
      [201, { status: 'success', data: lease }],
      [200, { status: 'success', data: lease }],
      [201, lease],
      [200, { status: 'success', data: { ok: true } }],
    ]);
    assert.deepEqual(await client.leases.acquire('web', ID, { ttl: 30, description: 'd' }), lease);
    assert.deepEqual(await client.leases.get('web', ID), lease);
    assert.deepEqual(await client.leases.acquire('web', ID, { ttl: 60 }, 'abc'), lease);
    await client.leases.release('web', ID, 'abc');
    assert.deepEqual(sent[0]!.body, { ttl: 30, description: 'd' });
    assert.equal(sent[0]!.headers['fly-machine-lease-nonce'], undefined);
    assert.equal(sent[2]!.headers['fly-machine-lease-nonce'], 'abc');
    assert.equal(sent[3]!.method, 'DELETE');
    assert.equal(sent[3]!.headers['fly-machine-lease-nonce'], 'abc');
  });

  it('reads and writes metadata', async () => {
    const { client, sent, responses } = clientWith([[200, { a: '1' }], [204, undefined], [200, { value: '1' }], [204, undefined], [204, undefined]]);
    assert.deepEqual(await client.metadata.get('web', ID), { a: '1' });
    await client.metadata.update('web', ID, { metadata: { a: null, b: '2' } });
    assert.equal(await client.metadata.getKey('web', ID, 'a'), '1');
    await client.metadata.setKey('web', ID, 'a', '3');
    await client.metadata.deleteKey('web', ID, 'a b');
    assert.equal(sent[1]!.method, 'PATCH');
    assert.deepEqual(sent[3]!.body, { value: '3' });
    assert.equal(sent[4]!.url, `http://api.test/v1/apps/web/machines/${ID}/metadata/a%20b`);
    assert.equal(responses[4]!.path, '/v1/apps/{app_name}/machines/{machine_id}/metadata/{key}');
  });

  it('lists org machines', async () => {
    const { client, sent, responses } = clientWith([[200, { machines: [] }]]);
    await client.orgs.machines('personal', { state: 'started' });
    assert.equal(sent[0]!.url, 'http://api.test/v1/orgs/personal/machines?state=started');
    assert.equal(responses[0]!.path, '/v1/orgs/{org_slug}/machines');
  });
});

describe('HangarClient errors', () => {
  it('turns an error body into a HangarApiError naming the operation and target', async () => {
    const { client, responses } = clientWith([[409, { error: 'machine is leased', status: 'lease_conflict' }, { 'fly-request-id': 'req1' }]]);
    const err = await client.machines.start('web', ID).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof HangarApiError);
    assert.ok(err instanceof HangarError);
    assert.equal(err.code, 'lease_conflict');
    assert.equal(err.message, `start machine ${ID} (app web): machine is leased`);
    assert.equal(err.serverMessage, 'machine is leased');
    assert.equal(err.responseStatus, 409);
    assert.equal(err.requestId, 'req1');
    assert.equal(responses[0]!.status, 409);
  });

  it('falls back to the HTTP status when the body has no code', async () => {
    const { client } = clientWith([[404, { error: 'app not found' }], [500, 'oops']]);
    await assert.rejects(client.apps.get('nope'), { code: 'not_found', message: 'get app nope: app not found' });
    await assert.rejects(client.apps.get('nope'), { code: 'unknown', message: 'get app nope: HTTP 500 with an unreadable error body' });
  });

  it('reports a network failure as unavailable with the base URL and a hint', async () => {
    const fetch = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4280'), { code: 'ECONNREFUSED' }) });
    };
    const client = new HangarClient({ baseUrl: 'http://127.0.0.1:4280', token: 't', fetch });
    const err = await client.apps.list().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof HangarNetworkError);
    assert.equal(err.code, 'unavailable');
    assert.equal(err.message, 'cannot reach the Hangar API at http://127.0.0.1:4280: connect ECONNREFUSED 127.0.0.1:4280; is `hangar up` running?');
  });

  it('reports a real refused connection as unavailable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const client = new HangarClient({ baseUrl: `http://127.0.0.1:${port}`, token: 't' });
    await assert.rejects(client.apps.list(), (err: unknown) => err instanceof HangarError && err.code === 'unavailable' && /ECONNREFUSED/.test(err.message));
  });

  it('times out with code timeout', async () => {
    const fetch = (_: string, init: RequestInit) =>
      new Promise<Response>((_, reject) => init.signal!.addEventListener('abort', () => reject(new Error('aborted'))));
    const client = new HangarClient({ baseUrl: 'http://api.test', fetch, timeoutMs: 20 });
    await assert.rejects(client.apps.get('web'), { code: 'timeout', message: 'get app web: request timed out after 20ms: GET http://api.test/v1/apps/web' });
  });
});
