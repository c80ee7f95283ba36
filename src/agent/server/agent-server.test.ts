import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { AgentEvent, AgentInfo, AgentMachine, AgentOpResult } from '../../api-types/agent.js';
import { eventKinds, spec, startTestAgent, tempDir, TEST_TOKEN, type TestAgent } from '../testing/agent-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let agent: TestAgent;

beforeEach(async () => {
  tmp = tempDir();
  agent = await startTestAgent({ dataDir: tmp.dir, hostId: 'host-test', heartbeatMs: 100 });
});
afterEach(async () => {
  await agent.close();
  tmp.remove();
});

/** Reads NDJSON lines from the event stream until `until` says stop or the time runs out. */
async function readStream(path: string, until: (lines: any[]) => boolean, timeoutMs = 3000): Promise<any[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const lines: any[] = [];
  try {
    const res = await fetch(agent.url + path, { headers: { authorization: `Bearer ${TEST_TOKEN}` }, signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buffered.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buffered.slice(0, i)));
        buffered = buffered.slice(i + 1);
      }
      if (until(lines)) break;
    }
    return lines;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

describe('agent HTTP API', () => {
  test('every endpoint needs the bearer token', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${TEST_TOKEN}`]) {
      const res = await fetch(`${agent.url}/agent/v1/info`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401);
      const body = (await res.json()) as { status: string; error: string };
      assert.equal(body.status, 'unauthenticated');
      assert.ok(!body.error.includes(TEST_TOKEN));
      assert.ok(res.headers.get('fly-request-id'));
    }
  });

  test('info names the host, region, driver, capabilities and seq', async () => {
    const { status, body } = await agent.call('GET', '/agent/v1/info');
    assert.equal(status, 200);
    assert.deepEqual(body as AgentInfo, { host_id: 'host-test', region: 'lcl', driver: 'fake', capabilities: { suspend: true, exec: true, signal: true, ps: true }, seq: 0 });
  });

  test('a machine through its whole life over HTTP', async () => {
    const s = spec({ meta: { hangar_fake_trap_signals: 'SIGUSR1' } });
    const created = await agent.call('POST', '/agent/v1/machines', { spec: s, start: true });
    assert.equal(created.status, 200);
    const result = created.body as AgentOpResult;
    assert.equal(result.machine.state, 'started');
    assert.deepEqual(eventKinds(result.events), ['launch:created', 'start:started']);

    const list = (await agent.call('GET', '/agent/v1/machines')).body as AgentMachine[];
    assert.deepEqual(list.map((m) => m.id), [s.id]);
    assert.equal(((await agent.call('GET', `/agent/v1/machines/${s.id}`)).body as AgentMachine).state, 'started');

    const exec = await agent.call('POST', `/agent/v1/machines/${s.id}/exec`, { command: ['cat'], stdin: 'hello' });
    assert.deepEqual(exec.body, { stdout: 'hello', stderr: '', exit_code: 0, exit_signal: 0 });
    const ps = await agent.call('GET', `/agent/v1/machines/${s.id}/ps`);
    assert.equal(ps.body[0].pid, 1);

    assert.equal((await agent.call('POST', `/agent/v1/machines/${s.id}/suspend`)).body.machine.state, 'suspended');
    assert.equal((await agent.call('POST', `/agent/v1/machines/${s.id}/start`)).body.machine.state, 'started');
    assert.equal((await agent.call('POST', `/agent/v1/machines/${s.id}/restart`, { signal: 15, timeout_ms: 1000 })).body.machine.state, 'started');
    assert.equal((await agent.call('POST', `/agent/v1/machines/${s.id}/signal`, { signal: 10 })).status, 200);

    const refused = await agent.call('DELETE', `/agent/v1/machines/${s.id}`);
    assert.equal(refused.status, 412);
    assert.equal(refused.body.status, 'failed_precondition');

    const stopped = await agent.call('POST', `/agent/v1/machines/${s.id}/stop`);
    assert.equal(stopped.body.machine.state, 'stopped');
    const v2 = spec({ id: s.id });
    const updated = await agent.call('PUT', `/agent/v1/machines/${s.id}`, { spec: v2, start: false });
    assert.deepEqual([updated.body.machine.state, updated.body.machine.version], ['stopped', v2.version]);

    const destroyed = await agent.call('DELETE', `/agent/v1/machines/${s.id}?force=true`);
    assert.equal(destroyed.body.machine.state, 'destroyed');
    assert.deepEqual((await agent.call('GET', '/agent/v1/machines')).body, []);
  });

  test('bad bodies answer invalid_argument naming the field', async () => {
    const s = spec();
    const missing = await agent.call('POST', '/agent/v1/machines', { spec: { ...s, id: 'NOT-HEX' }, start: true });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.status, 'invalid_argument');
    assert.match(missing.body.error, /spec\.id/);
    await agent.call('POST', '/agent/v1/machines', { spec: s, start: true });
    const signal = await agent.call('POST', `/agent/v1/machines/${s.id}/signal`, { signal: 'SIGKILL' });
    assert.equal(signal.status, 400);
    assert.match(signal.body.error, /signal/);
    const mismatch = await agent.call('PUT', `/agent/v1/machines/${s.id}`, { spec: spec(), start: false });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.body.error, /spec\.id: must match/);
    const notJson = await fetch(`${agent.url}/agent/v1/machines`, { method: 'POST', headers: { authorization: `Bearer ${TEST_TOKEN}` }, body: '{nope' });
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { status: string }).status, 'bad_request');
  });

  test('unknown machines and routes answer 404, wrong methods 405', async () => {
    assert.equal((await agent.call('GET', '/agent/v1/machines/0123456789abcd')).body.status, 'not_found');
    assert.equal((await agent.call('POST', '/agent/v1/machines/0123456789abcd/start')).status, 404);
    assert.equal((await agent.call('GET', '/agent/v1/nothing')).status, 404);
    assert.equal((await agent.call('PATCH', '/agent/v1/machines')).status, 405);
  });
});

describe('agent event stream', () => {
  test('replays stored changes after SEQ, then follows live ones', async () => {
    const a = spec();
    const created = (await agent.call('POST', '/agent/v1/machines', { spec: a, start: true })).body as AgentOpResult;
    const firstSeq = created.events[0]!.seq;
    const all = await readStream('/agent/v1/events?after=0', (lines) => lines.length >= 4);
    assert.deepEqual(all.map((l: AgentEvent) => l.seq), created.events.map((e) => e.seq));
    assert.deepEqual(all.map((l: AgentEvent) => l.state), ['creating', 'created', 'starting', 'started']);
    assert.equal(all[1].event.type, 'launch');
    assert.equal(all[1].private_ip, created.machine.private_ip);

    const later = readStream(`/agent/v1/events?after=${firstSeq + 1}`, (lines) => lines.some((l) => l.state === 'stopped'));
    await new Promise((r) => setTimeout(r, 50));
    await agent.call('POST', `/agent/v1/machines/${a.id}/stop`);
    const lines = (await later).filter((l) => !('heartbeat' in l)) as AgentEvent[];
    assert.deepEqual(lines.map((l) => l.state), ['starting', 'started', 'stopping', 'stopped']);
    const seqs = lines.map((l) => l.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), 'ordered, no duplicates');
  });

  test('without after it is live only, and heartbeats carry the seq', async () => {
    await agent.call('POST', '/agent/v1/machines', { spec: spec(), start: false });
    const seq = ((await agent.call('GET', '/agent/v1/info')).body as AgentInfo).seq;
    const lines = await readStream('/agent/v1/events', (l) => l.length >= 1);
    assert.deepEqual(lines[0], { heartbeat: seq });
  });

  test('close() ends open streams cleanly', async () => {
    const res = await fetch(`${agent.url}/agent/v1/events?after=0`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    const reading = (async () => {
      let text = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
      return text;
    })();
    await new Promise((r) => setTimeout(r, 30));
    const began = Date.now();
    await agent.close();
    await reading;
    assert.ok(Date.now() - began < 2000);
  });
});
