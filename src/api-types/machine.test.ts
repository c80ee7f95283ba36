import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HangarError } from '../core/errors.js';
import { parseWith } from '../core/validation.js';
import { CreateMachineRequest, Duration, ExecRequest, MachineConfig, StopRequest } from './machine.js';

const parse = (value: unknown) => parseWith(MachineConfig, value, 'config');

function refusal(value: unknown): string {
  try {
    parse(value);
  } catch (err) {
    assert.ok(err instanceof HangarError);
    assert.equal(err.code, 'invalid_argument');
    return err.message;
  }
  assert.fail(`expected ${JSON.stringify(value)} to be refused`);
}

const service = (extra: Record<string, unknown> = {}) => ({ protocol: 'tcp', internal_port: 8080, ...extra });

describe('MachineConfig', () => {
  test('image is the only required field', () => {
    assert.deepEqual(parse({ image: 'nginx' }), { image: 'nginx' });
  });

  test('a missing or empty image says it is required and gives an example', () => {
    for (const config of [{}, { image: '' }, { image: '   ' }]) {
      const message = refusal(config);
      assert.match(message, /^config\.image: /);
      if ('image' in config) {
        assert.match(message, /is required: name an OCI image, e\.g\. "registry\.example\.com\/app:latest"/);
      }
    }
  });

  test('unknown fields are dropped, at every level', () => {
    const out = parse({ image: 'nginx', bogus: 1, guest: { cpus: 1, turbo: true }, services: [service({ colour: 'red' })] });
    assert.deepEqual(out, { image: 'nginx', guest: { cpus: 1 }, services: [{ protocol: 'tcp', internal_port: 8080 }] });
  });

  test('autostop booleans become the string enum', () => {
    const out = parse({ image: 'nginx', services: [service({ autostop: true }), service({ autostop: false }), service({ autostop: 'suspend' })] });
    assert.deepEqual(out.services?.map((s) => s.autostop), ['stop', 'off', 'suspend']);
    assert.match(refusal({ image: 'nginx', services: [service({ autostop: 'sometimes' })] }), /^config\.services\[0\]\.autostop: /);
  });

  test('durations given as nanoseconds become strings; Go strings are kept', () => {
    const out = parse({
      image: 'nginx',
      stop_config: { timeout: 5_000_000_000, signal: 'SIGINT' },
      checks: { alive: { type: 'http', port: 8080, interval: '15s', timeout: 2_500_000_000, grace_period: '1m30s' } },
    });
    assert.deepEqual(out.stop_config, { timeout: '5000ms', signal: 'SIGINT' });
    assert.deepEqual(out.checks?.alive, { type: 'http', port: 8080, interval: '15s', timeout: '2500ms', grace_period: '1m30s' });
  });

  test('Duration accepts Go strings and nanoseconds, and refuses the rest', () => {
    for (const ok of ['10s', '1m30s', '500ms', '1.5s', '0', '2h', '100us']) assert.equal(Duration.parse(ok), ok);
    assert.equal(Duration.parse(0), '0ms');
    assert.equal(Duration.parse(1_000_000), '1ms');
    for (const bad of ['10', '', 'ten seconds', '1m 30s', -1, 1.5, null]) assert.equal(Duration.safeParse(bad).success, false, String(bad));
    assert.match(refusal({ image: 'nginx', stop_config: { timeout: 'soon' } }), /^config\.stop_config\.timeout: expected a duration such as "10s", "1m30s" or "500ms", got "soon"$/);
  });

  test('the restart policy accepts flyctl\'s alias on-fail', () => {
    assert.deepEqual(parse({ image: 'nginx', restart: { policy: 'on-fail', max_retries: 3 } }).restart, { policy: 'on-failure', max_retries: 3 });
    for (const policy of ['no', 'always', 'on-failure']) assert.equal(parse({ image: 'nginx', restart: { policy } }).restart?.policy, policy);
    assert.match(refusal({ image: 'nginx', restart: { policy: 'sometimes' } }), /^config\.restart\.policy: /);
  });

  test('a stop signal must be one Fly accepts for stop', () => {
    assert.match(refusal({ image: 'nginx', stop_config: { signal: 'SIGSEGV' } }), /^config\.stop_config\.signal: .*got "SIGSEGV"$/);
  });

  describe('files', () => {
    const raw = Buffer.from('hello').toString('base64');

    test('take exactly one of raw_value, secret_name or image_config', () => {
      assert.deepEqual(parse({ image: 'nginx', files: [{ guest_path: '/etc/a', raw_value: raw }] }).files, [{ guest_path: '/etc/a', raw_value: raw }]);
      assert.ok(parse({ image: 'nginx', files: [{ guest_path: '/etc/a', secret_name: 'A' }] }));
      assert.ok(parse({ image: 'nginx', files: [{ guest_path: '/etc/a', image_config: 'x' }] }));
      for (const file of [{ guest_path: '/etc/a' }, { guest_path: '/etc/a', raw_value: raw, secret_name: 'A' }, { guest_path: '/etc/a', raw_value: raw, secret_name: 'A', image_config: 'x' }]) {
        assert.equal(refusal({ image: 'nginx', files: [file] }), 'config.files[0]: set exactly one of raw_value, secret_name or image_config');
      }
    });

    test('raw_value must be base64 and guest_path absolute', () => {
      assert.match(refusal({ image: 'nginx', files: [{ guest_path: '/etc/a', raw_value: 'not base64!' }] }), /^config\.files\[0\]\.raw_value: must be base64/);
      assert.match(refusal({ image: 'nginx', files: [{ guest_path: 'etc/a', raw_value: raw }] }), /^config\.files\[0\]\.guest_path: must be an absolute path \(start with \/\), got "etc\/a"$/);
    });
  });

  describe('services', () => {
    test('need a protocol and an internal port in range', () => {
      assert.match(refusal({ image: 'nginx', services: [{ internal_port: 8080 }] }), /^config\.services\[0\]\.protocol: /);
      assert.equal(refusal({ image: 'nginx', services: [service({ internal_port: 0 })] }), 'config.services[0].internal_port: must be a port number 1-65535, got 0');
      assert.equal(refusal({ image: 'nginx', services: [service({ internal_port: 65536 })] }), 'config.services[0].internal_port: must be a port number 1-65535, got 65536');
    });

    test('each port sets port, or start_port and end_port', () => {
      const ok = parse({ image: 'nginx', services: [service({ ports: [{ port: 443, handlers: ['tls', 'http'] }, { start_port: 9000, end_port: 9010 }] })] });
      assert.equal(ok.services?.[0]?.ports?.length, 2);
      assert.equal(refusal({ image: 'nginx', services: [service({ ports: [{ handlers: ['http'] }] })] }), 'config.services[0].ports[0]: set port, or start_port and end_port');
      assert.equal(refusal({ image: 'nginx', services: [service({ ports: [{ start_port: 9000 }] })] }), 'config.services[0].ports[0]: set port, or start_port and end_port');
      assert.equal(refusal({ image: 'nginx', services: [service({ ports: [{ port: 70000 }] })] }), 'config.services[0].ports[0].port: must be a port number 1-65535, got 70000');
    });

    test('unknown handlers are refused', () => {
      assert.match(refusal({ image: 'nginx', services: [service({ ports: [{ port: 80, handlers: ['gopher'] }] })] }), /^config\.services\[0\]\.ports\[0\]\.handlers\[0\]: .*got "gopher"$/);
    });

    test('concurrency soft_limit may not exceed hard_limit', () => {
      assert.ok(parse({ image: 'nginx', services: [service({ concurrency: { type: 'requests', soft_limit: 20, hard_limit: 25 } })] }));
      assert.equal(refusal({ image: 'nginx', services: [service({ concurrency: { soft_limit: 30, hard_limit: 25 } })] }), 'config.services[0].concurrency: soft_limit must not exceed hard_limit');
    });
  });

  describe('mounts', () => {
    test('refuse the root path, relative paths and more than one volume', () => {
      assert.ok(parse({ image: 'nginx', mounts: [{ volume: 'vol_1', path: '/data' }] }));
      assert.equal(refusal({ image: 'nginx', mounts: [{ volume: 'vol_1', path: '/' }] }), 'config.mounts[0].path: cannot be / (mount a volume below the root)');
      assert.match(refusal({ image: 'nginx', mounts: [{ volume: 'vol_1', path: 'data' }] }), /^config\.mounts\[0\]\.path: must be an absolute path/);
      assert.match(refusal({ image: 'nginx', mounts: [{ volume: '', path: '/data' }] }), /^config\.mounts\[0\]\.volume: must name a volume id/);
      assert.match(refusal({ image: 'nginx', mounts: [{ volume: 'a', path: '/a' }, { volume: 'b', path: '/b' }] }), /^config\.mounts: a machine can mount at most one volume/);
    });
  });

  test('guest fields are checked', () => {
    assert.equal(refusal({ image: 'nginx', guest: { cpus: 0 } }), 'config.guest.cpus: must be at least 1, got 0');
    assert.equal(refusal({ image: 'nginx', guest: { cpus: 65 } }), 'config.guest.cpus: must be at most 64, got 65');
    assert.match(refusal({ image: 'nginx', guest: { cpu_kind: 'turbo' } }), /^config\.guest\.cpu_kind: .*got "turbo"$/);
  });

  test('env and metadata are string maps', () => {
    assert.deepEqual(parse({ image: 'nginx', env: { A: '1' }, metadata: { role: 'web' } }), { image: 'nginx', env: { A: '1' }, metadata: { role: 'web' } });
    assert.match(refusal({ image: 'nginx', env: { A: 1 } }), /^config\.env\.A: .*got 1$/);
  });
});

describe('requests', () => {
  test('CreateMachineRequest checks name and region', () => {
    assert.ok(parseWith(CreateMachineRequest, { name: 'web-1', region: 'ams', config: { image: 'nginx' } }));
    assert.throws(() => parseWith(CreateMachineRequest, { name: 'Web_1', config: { image: 'nginx' } }), /name: must be a lowercase DNS label/);
    assert.throws(() => parseWith(CreateMachineRequest, { region: 'amsterdam', config: { image: 'nginx' } }), /region: must be a three-letter region code such as "ams", got "amsterdam"/);
    assert.throws(() => parseWith(CreateMachineRequest, { name: 'web' }), /config: /);
  });

  test('StopRequest accepts a signal name or number and a duration', () => {
    assert.deepEqual(parseWith(StopRequest, { signal: 9, timeout: 1_000_000_000 }), { signal: 9, timeout: '1000ms' });
    assert.deepEqual(parseWith(StopRequest, { signal: 'SIGTERM', timeout: '30s' }), { signal: 'SIGTERM', timeout: '30s' });
  });

  test('ExecRequest needs command or cmd', () => {
    assert.ok(parseWith(ExecRequest, { command: ['ls', '-l'] }));
    assert.ok(parseWith(ExecRequest, { cmd: 'ls -l' }));
    assert.throws(() => parseWith(ExecRequest, { stdin: 'x' }), /set command \(array\) or cmd \(string\)/);
  });
});
