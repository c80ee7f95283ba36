import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyConfigFlags, parseDurationFlag, parseMemory, parsePort, parseStopFlags, parseStopSignal, portsToServices, shellWords, type ConfigFlagValues } from './machine-flags.js';
import { MACHINE_ID, fakeMachine, runHangar, startFakeApi } from './testing.js';

const NO_FLAGS: ConfigFlagValues = {
  env: [], metadata: [], port: [], 'vm-size': undefined, 'vm-cpus': undefined, 'vm-memory': undefined,
  'vm-cpu-kind': undefined, restart: undefined, entrypoint: undefined, schedule: undefined,
};

describe('machine flags', () => {
  it('parses flyctl port specs', () => {
    assert.deepEqual(parsePort('80'), { port: 80, internalPort: 80, protocol: 'tcp', handlers: [] });
    assert.deepEqual(parsePort('443:8080/tcp:http:tls'), { port: 443, internalPort: 8080, protocol: 'tcp', handlers: ['http', 'tls'] });
    assert.deepEqual(parsePort('80:8080/tcp:http,tls'), { port: 80, internalPort: 8080, protocol: 'tcp', handlers: ['http', 'tls'] });
    assert.deepEqual(parsePort('5432/tcp:pg_tls'), { port: 5432, internalPort: 5432, protocol: 'tcp', handlers: ['pg_tls'] });
    assert.deepEqual(parsePort('53/udp'), { port: 53, internalPort: 53, protocol: 'udp', handlers: [] });
  });

  it('rejects bad port specs naming the problem', () => {
    assert.throws(() => parsePort('http'), { message: /^--port: 'http' is not a port number 1-65535 in 'http'/ });
    assert.throws(() => parsePort('80:99999'), { message: /'99999' is not a port number/ });
    assert.throws(() => parsePort('80/sctp'), { message: /unknown protocol 'sctp'/ });
    assert.throws(() => parsePort('80/tcp:gzip'), { message: /unknown handler 'gzip'/ });
  });

  it('groups ports into services by internal port', () => {
    assert.deepEqual(portsToServices([parsePort('80:8080/tcp:http'), parsePort('443:8080/tcp:http:tls'), parsePort('9000')]), [
      { protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }, { port: 443, handlers: ['http', 'tls'] }] },
      { protocol: 'tcp', internal_port: 9000, ports: [{ port: 9000 }] },
    ]);
  });

  it('parses memory sizes', () => {
    assert.equal(parseMemory('vm-memory', '512'), 512);
    assert.equal(parseMemory('vm-memory', '1gb'), 1024);
    assert.equal(parseMemory('vm-memory', '256MB'), 256);
    assert.throws(() => parseMemory('vm-memory', 'abc'), { message: "--vm-memory: expected a number of MiB, got 'abc'" });
  });

  it('parses durations and signals', () => {
    assert.equal(parseDurationFlag('timeout', '30'), 30_000);
    assert.equal(parseDurationFlag('timeout', '1m30s'), 90_000);
    assert.throws(() => parseDurationFlag('timeout', 'soon'), { message: "--timeout: expected seconds or a duration such as 10s or 5m, got 'soon'" });
    assert.equal(parseStopSignal('signal', 'term'), 'SIGTERM');
    assert.equal(parseStopSignal('signal', '9'), 'SIGKILL');
    assert.throws(() => parseStopSignal('signal', 'SIGSEGV'), { message: /^--signal: expected one of SIGHUP, SIGINT/ });
  });

  it('splits command lines like a shell', () => {
    assert.deepEqual(shellWords('x', `sh -c 'echo "hi there"' a\\ b "q\\"d"`), ['sh', '-c', 'echo "hi there"', 'a b', 'q"d']);
    assert.deepEqual(shellWords('x', '  '), []);
    assert.deepEqual(shellWords('x', "''"), ['']);
    assert.throws(() => shellWords('--entrypoint', "sh 'oops"), { message: "--entrypoint: unterminated ' quote in 'sh 'oops'" });
  });

  it('applies config flags onto a copy, merging env and metadata', () => {
    const base = { image: 'nginx', env: { A: '1' }, guest: { cpu_kind: 'shared' as const, cpus: 1, memory_mb: 256 } };
    const config = applyConfigFlags(base, {
      ...NO_FLAGS, env: ['B=2', 'C=x=y'], metadata: ['team=web'], 'vm-size': 'shared-cpu-2x', 'vm-memory': '1gb',
      restart: 'on-fail', entrypoint: '/bin/sh -c', port: ['80:8080/tcp:http'],
    });
    assert.deepEqual(config, {
      image: 'nginx',
      env: { A: '1', B: '2', C: 'x=y' },
      metadata: { team: 'web' },
      guest: { cpu_kind: 'shared', cpus: 2, memory_mb: 1024 },
      services: [{ protocol: 'tcp', internal_port: 8080, ports: [{ port: 80, handlers: ['http'] }] }],
      restart: { policy: 'on-failure' },
      init: { entrypoint: ['/bin/sh', '-c'] },
    });
    assert.deepEqual(base.env, { A: '1' });
  });

  it('validates every value', () => {
    assert.throws(() => applyConfigFlags({ image: 'x' }, { ...NO_FLAGS, env: ['NOVALUE'] }), { message: "--env: expected NAME=VALUE, got 'NOVALUE'" });
    assert.throws(() => applyConfigFlags({ image: 'x' }, { ...NO_FLAGS, 'vm-size': 'huge' }), { message: /^--vm-size: unknown size 'huge'; expected one of shared-cpu-1x/ });
    assert.throws(() => applyConfigFlags({ image: 'x' }, { ...NO_FLAGS, 'vm-cpus': 'two' }), { message: "--vm-cpus: expected a number of vCPUs, got 'two'" });
    assert.throws(() => applyConfigFlags({ image: 'x' }, { ...NO_FLAGS, 'vm-cpu-kind': 'gpu' }), { message: "--vm-cpu-kind: expected shared or performance, got 'gpu'" });
    assert.throws(() => applyConfigFlags({ image: 'x' }, { ...NO_FLAGS, restart: 'sometimes' }), { message: "--restart: expected no, always or on-failure, got 'sometimes'" });
    assert.throws(() => applyConfigFlags({ image: 'x' }, { ...NO_FLAGS, schedule: 'yearly' }), { message: "--schedule: expected hourly, daily, weekly or monthly, got 'yearly'" });
  });

  it('parses the stop flags of machine stop and restart, leaving out the ones not given', () => {
    assert.deepEqual(parseStopFlags({ signal: undefined, timeout: undefined, 'wait-timeout': '5m' }), { stop: {}, waitMs: 300_000 });
    assert.deepEqual(parseStopFlags({ signal: 'term', timeout: '90', 'wait-timeout': '10s' }), { stop: { signal: 'SIGTERM', timeout: '1m30s' }, waitMs: 10_000 });
    assert.throws(() => parseStopFlags({ signal: undefined, timeout: undefined, 'wait-timeout': 'later' }), {
      message: "--wait-timeout: expected seconds or a duration such as 10s or 5m, got 'later'",
    });
    // The first bad flag, in command-line help order, is the one reported.
    assert.throws(() => parseStopFlags({ signal: 'SIGFOO', timeout: 'soon', 'wait-timeout': 'later' }), {
      message: "--signal: expected one of SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM, got 'SIGFOO'",
    });
    assert.throws(() => parseStopFlags({ signal: '15', timeout: 'soon', 'wait-timeout': 'later' }), {
      message: "--timeout: expected seconds or a duration such as 10s or 5m, got 'soon'",
    });
  });

  for (const command of ['stop', 'restart']) {
    it(`machine ${command} refuses a bad --wait-timeout before any request`, async () => {
      const api = await startFakeApi({});
      after(() => api.close());
      const t = await runHangar(`machine ${command} ${MACHINE_ID} -a web --wait-timeout later`, { api });
      assert.deepEqual(t, { code: 1, stdout: '', stderr: "Error: --wait-timeout: expected seconds or a duration such as 10s or 5m, got 'later'\n" });
      assert.deepEqual(api.calls(), []);
    });
  }

  it('machine stop and restart send the same parsed signal and timeout', async () => {
    const base = `/v1/apps/web/machines/${MACHINE_ID}`;
    const api = await startFakeApi({
      [`GET ${base}`]: { body: fakeMachine() },
      [`POST ${base}/stop`]: { body: { ok: true } },
      [`POST ${base}/restart`]: { body: { ok: true } },
    });
    after(() => api.close());
    const stop = await runHangar(`machine stop ${MACHINE_ID} -a web -s 15 --timeout 90 --detach`, { api });
    assert.equal(stop.code, 0, stop.stderr);
    const restart = await runHangar(`machine restart ${MACHINE_ID} -a web -s 15 --time 90 --detach`, { api });
    assert.equal(restart.code, 0, restart.stderr);
    assert.deepEqual(api.calls(), [`GET ${base}`, `POST ${base}/stop`, `POST ${base}/restart`]);
    assert.deepEqual(api.requests[1]!.body, { signal: 'SIGTERM', timeout: '1m30s' });
    assert.deepEqual(Object.fromEntries(api.requests[2]!.query), { signal: 'SIGTERM', timeout: '1m30s' });
  });
});
