import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spec, tempDir } from '../testing/agent-fixtures.js';
import { AgentDb } from './agent-db.js';

test('a change writes state, numbered event and op bookkeeping atomically; seq survives reopening', () => {
  const tmp = tempDir();
  try {
    const db = new AgentDb(tmp.dir);
    const s = spec();
    const begun = db.change({ id: s.id, state: 'creating', spec: s, beginOp: { kind: 'create', targetVersion: s.version, args: { start: true } } });
    assert.equal(begun.event.seq, 1);
    assert.deepEqual(db.pendingOps().map((o) => [o.kind, o.target_version, o.args, o.prev_state]), [['create', s.version, { start: true }, 'absent']]);
    const done = db.change({ id: s.id, state: 'created', private_ip: 'fdaa::2', event: { id: 'E', type: 'launch', status: 'created', source: 'user', timestamp: 1 }, finishOp: { id: begun.opId!, outcome: 'done' } });
    assert.equal(done.row.seq, 2);
    assert.deepEqual(db.pendingOps(), []);
    assert.equal(db.getMachine(s.id)?.private_ip, 'fdaa::2');
    assert.deepEqual(db.machineEvents(s.id).map((e) => e.type), ['launch']);
    db.close();
    const reopened = new AgentDb(tmp.dir);
    assert.equal(reopened.lastSeq(), 2);
    assert.equal(reopened.change({ id: s.id, state: 'starting' }).event.seq, 3);
    reopened.close();
  } finally {
    tmp.remove();
  }
});

test('old events are trimmed, seq stays monotonic and trimmed_through says how far', () => {
  const tmp = tempDir();
  try {
    const db = new AgentDb(tmp.dir, { eventsKept: 20 });
    const s = spec();
    for (let i = 0; i < 65; i++) db.change({ id: s.id, state: i % 2 ? 'started' : 'stopped', spec: s });
    const kept = db.eventsAfter(0, 1000);
    assert.ok(kept.length <= 30 && kept.length >= 20, `kept ${kept.length}`);
    assert.equal(kept.at(-1)?.seq, 65);
    assert.equal(db.trimmedThrough(), kept[0]!.seq - 1);
    db.close();
  } finally {
    tmp.remove();
  }
});
