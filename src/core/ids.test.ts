import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DNS_LABEL_PATTERN, MACHINE_ID_PATTERN, ULID_PATTERN, newAppId, newMachineId, newNonce, newRequestId, newToken, newUlid, ulidTime,
} from './ids.js';

describe('machine ids', () => {
  test('are 14 lowercase hex characters and unique', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = newMachineId();
      assert.match(id, /^[0-9a-f]{14}$/);
      assert.match(id, MACHINE_ID_PATTERN);
      ids.add(id);
    }
    assert.equal(ids.size, 1000);
  });

  test('MACHINE_ID_PATTERN refuses other shapes', () => {
    for (const bad of ['', '3d8d9011a1458', '3d8d9011a145899', '3D8D9011A14589', '3d8d9011a1458g']) {
      assert.doesNotMatch(bad, MACHINE_ID_PATTERN, bad);
    }
  });
});

describe('ULIDs', () => {
  test('are 26 Crockford base32 characters', () => {
    for (let i = 0; i < 200; i++) {
      const id = newUlid();
      assert.equal(id.length, 26);
      assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
      assert.match(id, ULID_PATTERN);
      assert.doesNotMatch(id, /[ILOU]/);
    }
  });

  test('ulidTime round-trips the timestamp', () => {
    // Ids are monotonic across calls, so each time asked for is later than any before it.
    const start = Date.now() + 10_000;
    for (const t of [start, start + 1, start + 999, start + 86_400_000]) {
      assert.equal(ulidTime(newUlid(t)), t);
    }
    assert.equal(ulidTime('00000000000000000000000000'), 0);
    assert.equal(ulidTime('7ZZZZZZZZZZZZZZZZZZZZZZZZZ'), 2 ** 48 - 1);
    assert.equal(ulidTime('01ARZ3NDEKTSV4RRFFQ69G5FAV'), 1_469_922_850_259);
  });

  test('encodes time in the first 10 characters, so later ids sort later', () => {
    const base = Date.now() + 2 * 86_400_000;
    const a = newUlid(base);
    const b = newUlid(base + 1);
    const c = newUlid(base + 1000);
    assert.ok(a < b && b < c);
    assert.ok(a.slice(0, 10) < b.slice(0, 10));
  });

  test('are monotonic and sortable within the same millisecond', () => {
    const t = Date.now() + 3 * 86_400_000;
    const ids = Array.from({ length: 1000 }, () => newUlid(t));
    assert.equal(new Set(ids).size, ids.length, 'duplicates within one ms');
    assert.deepEqual([...ids].sort(), ids, 'ids made in order sort in order');
    for (const id of ids) assert.equal(ulidTime(id), t);
    // Only the random part moves: ids share the time prefix.
    assert.ok(ids.every((id) => id.slice(0, 10) === ids[0]!.slice(0, 10)));
  });

  test('an id asked for at an earlier time than the last still sorts after it', () => {
    const t = Date.now() + 4 * 86_400_000;
    const first = newUlid(t);
    const second = newUlid(t - 5000);
    assert.ok(second > first);
    assert.equal(ulidTime(second), t);
  });

  test('sorts in order of creation across many default-clock calls', () => {
    const ids = Array.from({ length: 500 }, () => newUlid());
    assert.deepEqual([...ids].sort(), ids);
  });
});

describe('other ids', () => {
  test('nonces are 12 hex characters', () => {
    assert.match(newNonce(), /^[0-9a-f]{12}$/);
    assert.notEqual(newNonce(), newNonce());
  });

  test('app ids are 16 lowercase alphanumerics', () => {
    assert.match(newAppId(), /^[0-9a-z]{16}$/);
  });

  test('tokens carry their prefix and url-safe text', () => {
    const token = newToken('hgr');
    assert.match(token, /^hgr_[A-Za-z0-9_-]{32}$/);
  });

  test('request ids are lowercase ULIDs', () => {
    const id = newRequestId();
    assert.equal(id.length, 26);
    assert.match(id.toUpperCase(), ULID_PATTERN);
    assert.equal(id, id.toLowerCase());
  });

  test('DNS_LABEL_PATTERN accepts RFC 1123 labels only', () => {
    for (const ok of ['a', 'my-app', 'app1', '1app', 'a'.repeat(63)]) assert.match(ok, DNS_LABEL_PATTERN, ok);
    for (const bad of ['', '-app', 'app-', 'My-App', 'my_app', 'a.b', 'a'.repeat(64)]) assert.doesNotMatch(bad, DNS_LABEL_PATTERN, bad);
  });
});
