import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteMachine } from '../api-types/watch.js';
import { appFromHost, checksPass, httpService, machineAutostop, RouteTable, tcpService } from './route-table.js';

const rm = (id: string, app: string, o: Partial<RouteMachine> = {}): RouteMachine => ({
  id, app_name: app, org_slug: 'personal', region: 'lcl', state: 'started', private_ip: 'fdaa::1', version: '1', cordoned: false,
  services: [], check_configs: {}, checks: [], metadata: {}, host_status: 'ok', updated_at: '', ...o,
});

test('route table: snapshot, upsert, remove', () => {
  const t = new RouteTable();
  assert.deepEqual(t.apply({ type: 'snapshot', seq: 1, machines: [rm('a', 'web'), rm('b', 'web'), rm('c', 'api')] }).sort(), ['api', 'web']);
  assert.equal(t.app('web').length, 2);
  t.apply({ type: 'upsert', seq: 2, machine: rm('a', 'web', { state: 'stopped' }) });
  assert.equal(t.get('a')?.state, 'stopped');
  t.apply({ type: 'remove', seq: 3, machine_id: 'c', app_name: 'api' });
  assert.equal(t.hasApp('api'), false);
  assert.equal(t.knows('api'), true);
  t.apply({ type: 'snapshot', seq: 1, machines: [rm('z', 'new')] });
  assert.deepEqual(t.apps(), ['new']);
  assert.equal(t.apply({ type: 'heartbeat', seq: 2 }).length, 0);
});

const hostCases: [string | undefined, string, string | undefined][] = [
  ['web.localhost', 'localhost', 'web'],
  ['web.localhost:8080', 'localhost', 'web'],
  ['WEB.Example.com.', 'example.com', 'web'],
  ['a.b.localhost', 'localhost', undefined],
  ['localhost', 'localhost', undefined],
  ['web.other', 'localhost', undefined],
  ['[::1]:80', 'localhost', undefined],
  [undefined, 'localhost', undefined],
];
for (const [host, domain, want] of hostCases) test(`appFromHost(${host}, ${domain}) = ${want}`, () => assert.equal(appFromHost(host, domain), want));

test('services: http vs https vs tcp ports, limits and defaults', () => {
  const m = rm('a', 'web', {
    services: [
      { protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'], force_https: true }, { port: 443, handlers: ['tls', 'http'] }], concurrency: { type: 'requests', soft_limit: 5, hard_limit: 7 } },
      { protocol: 'tcp', internal_port: 5432, ports: [{ port: 5432 }] },
    ],
  });
  const h = httpService(m, 'http')!;
  assert.deepEqual([h.internalPort, h.port?.port, h.forceHttps, h.concurrencyType, h.softLimit, h.hardLimit], [8080, 80, true, 'requests', 5, 7]);
  assert.equal(httpService(m, 'https')!.port?.port, 443);
  assert.equal(tcpService(m, 5432)!.internalPort, 5432);
  assert.equal(tcpService(m, 80), undefined);
  const d = httpService(rm('b', 'web', { services: [{ protocol: 'tcp', internal_port: 80, ports: [{ port: 80, handlers: ['http'] }] }] }), 'http')!;
  assert.deepEqual([d.concurrencyType, d.softLimit, d.hardLimit], ['connections', 20, 25]);
  const t = new RouteTable();
  t.apply({ type: 'snapshot', seq: 1, machines: [m] });
  assert.deepEqual(t.tcpPorts(), [{ port: 5432, app: 'web', tls: false }]);
});

test('checks and autostop settings', () => {
  assert.equal(checksPass(rm('a', 'w', { checks: [{ name: 'x', status: 'warning', output: '' } as never] })), false);
  assert.equal(checksPass(rm('a', 'w', { checks: [{ name: 'x', status: 'warning', output: '' } as never] }), true), true);
  assert.equal(checksPass(rm('a', 'w', { checks: [{ name: 'x', status: 'passing', output: '' } as never] })), true);
  assert.equal(checksPass(rm('a', 'w', { check_configs: { info: {} }, checks: [{ name: 'info', status: 'critical', output: '' } as never] })), true);
  assert.equal(checksPass(rm('a', 'w', { check_configs: { ready: { kind: 'readiness' } }, checks: [{ name: 'ready', status: 'critical', output: '' } as never] })), false);
  assert.equal(checksPass(rm('a', 'w', { checks: [{ name: 'x', status: 'critical', output: '' } as never] })), false);
  const m = rm('a', 'w', { services: [
    { protocol: 'tcp', internal_port: 1, autostop: 'suspend', min_machines_running: 2 },
    { protocol: 'tcp', internal_port: 2, autostop: 'stop', autostart: false },
  ] });
  assert.deepEqual(machineAutostop(m), { autostop: 'stop', autostart: false, minRunning: 2 });
});
