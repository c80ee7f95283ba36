import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HangarError } from '../core/errors.js';
import { type HostSnapshot, placeMachine } from './place.js';

/** A valid host for tests to tweak (nomad's `mock.Node()` habit). */
function host(overrides: Partial<HostSnapshot> = {}): HostSnapshot {
  return { id: 'h1', region: 'ams', reachable: true, liveMachines: 0, ...overrides };
}

describe('placeMachine', () => {
  test('places on a host in the requested region', () => {
    const hosts = [host({ id: 'fra-1', region: 'fra' }), host({ id: 'ams-1', region: 'ams', liveMachines: 50 })];
    assert.equal(placeMachine(hosts, { region: 'ams' }).id, 'ams-1');
    assert.equal(placeMachine(hosts, { region: 'fra' }).id, 'fra-1');
  });

  test('picks the least loaded reachable host, the first one on a tie', () => {
    const hosts = [
      host({ id: 'a', liveMachines: 5 }), host({ id: 'b', liveMachines: 2 }), host({ id: 'c', liveMachines: 2 }),
      host({ id: 'd', liveMachines: 0, reachable: false }), host({ id: 'e', region: 'fra', liveMachines: 0 }),
    ];
    assert.equal(placeMachine(hosts, { region: 'ams' }).id, 'b');
  });

  test('skips unreachable hosts', () => {
    const hosts = [host({ id: 'a', reachable: false }), host({ id: 'b', liveMachines: 100 })];
    assert.equal(placeMachine(hosts, { region: 'ams' }).id, 'b');
  });

  test('returns the snapshot it chose, unchanged', () => {
    const hosts = [host({ id: 'a', liveMachines: 3 })];
    assert.equal(placeMachine(hosts, { region: 'ams' }), hosts[0]);
    assert.equal(hosts[0]!.liveMachines, 3);
  });

  test('a region without hosts is insufficient_capacity and the message lists the regions', () => {
    const hosts = [host({ id: 'x', region: 'fra' }), host({ id: 'y', region: 'ams' }), host({ id: 'z', region: 'fra' })];
    assert.throws(() => placeMachine(hosts, { region: 'syd' }), (err: unknown) => {
      assert.ok(err instanceof HangarError);
      assert.equal(err.code, 'insufficient_capacity');
      assert.equal(err.httpStatus, 503);
      assert.equal(err.message, 'cannot place a machine in region "syd": no host serves it; regions with hosts: ams, fra');
      return true;
    });
  });

  test('a region whose hosts are all unreachable says so', () => {
    const hosts = [host({ id: 'a', reachable: false }), host({ id: 'b', reachable: false }), host({ id: 'c', region: 'fra' })];
    assert.throws(() => placeMachine(hosts, { region: 'ams' }), {
      code: 'insufficient_capacity',
      message: 'cannot place a machine in region "ams": its hosts are unreachable; regions with hosts: ams, fra',
    });
  });

  test('no hosts at all', () => {
    assert.throws(() => placeMachine([], { region: 'ams' }), {
      code: 'insufficient_capacity',
      message: 'cannot place a machine in region "ams": no host serves it; regions with hosts: none',
    });
  });
});
