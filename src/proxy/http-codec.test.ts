import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyFramer, parseRequestHead, requestFraming, responseFraming, parseResponseHead } from './http-codec.js';
import { parseFlyReplay } from './replay.js';

test('chunked framing finds the end across any split, trailers included', () => {
  const body = Buffer.from('4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT');
  for (let split = 1; split < body.length; split++) {
    const f = new BodyFramer({ kind: 'chunked' });
    const a = f.feed(body.subarray(0, split));
    const b = f.done ? 0 : f.feed(body.subarray(split));
    assert.equal(a + b, body.length - 4, `split ${split}`);
    assert.ok(f.done);
  }
  assert.throws(() => new BodyFramer({ kind: 'chunked' }).feed(Buffer.from('zz\r\n')), /chunk size/);
});

test('request framing rejects smuggling shapes', () => {
  const h = (lines: string) => parseRequestHead(`POST / HTTP/1.1\r\n${lines}`, 100);
  assert.deepEqual(requestFraming(h('Content-Length: 5')), { kind: 'length', length: 5 });
  assert.deepEqual(requestFraming(h('Transfer-Encoding: chunked')), { kind: 'chunked' });
  assert.throws(() => requestFraming(h('Content-Length: 5\r\nTransfer-Encoding: chunked')), /both/);
  assert.throws(() => requestFraming(h('Content-Length: 5\r\nContent-Length: 6')), /conflicting/);
  assert.throws(() => requestFraming(h('Transfer-Encoding: gzip')), /chunked/);
  assert.throws(() => requestFraming(h('Content-Length: -1')), /malformed/);
  assert.throws(() => h('Bad Name: x'), /header name/);
  assert.throws(() => parseRequestHead('GET /\r\n', 100), /request line/);
  assert.throws(() => h(Array.from({ length: 5 }, () => 'a: b').join('\r\n')).names && parseRequestHead(`GET / HTTP/1.1\r\n${Array.from({ length: 101 }, () => 'a: b').join('\r\n')}`, 100), /header fields/);
});

test('response framing', () => {
  const r = (s: string) => parseResponseHead(`HTTP/1.1 ${s}`);
  assert.deepEqual(responseFraming(r('200 OK\r\ncontent-length: 3'), 'GET'), { kind: 'length', length: 3 });
  assert.deepEqual(responseFraming(r('200 OK\r\ncontent-length: 3'), 'HEAD'), { kind: 'none' });
  assert.deepEqual(responseFraming(r('204 No Content'), 'GET'), { kind: 'none' });
  assert.deepEqual(responseFraming(r('200 OK'), 'GET'), { kind: 'close' });
  assert.deepEqual(responseFraming(r('200 OK\r\ntransfer-encoding: chunked'), 'GET'), { kind: 'chunked' });
});

test('fly-replay parsing', () => {
  assert.deepEqual(parseFlyReplay('region=ams;app=other'), { elsewhere: false, region: 'ams', app: 'other' });
  assert.deepEqual(parseFlyReplay('instance=abc;state=s1'), { elsewhere: false, instance: 'abc', state: 's1' });
  assert.deepEqual(parseFlyReplay('elsewhere=true'), { elsewhere: true });
  assert.equal(parseFlyReplay('nonsense'), undefined);
});

test('heads with NUL or a bare CR/LF are refused; header names are tokens', () => {
  const h = (lines: string) => parseRequestHead(`GET / HTTP/1.1\r\n${lines}`, 100);
  assert.throws(() => h('a: b\0c'), /NUL or a bare CR or LF/);
  assert.throws(() => h('a: b\rc'), /NUL or a bare CR or LF/);
  assert.throws(() => h('a: b\nc: d'), /NUL or a bare CR or LF/);
  assert.throws(() => parseRequestHead('GET /\0 HTTP/1.1', 100), /NUL or a bare CR or LF/);
  assert.throws(() => parseResponseHead('HTTP/1.1 200 OK\r\nx: \0'), (e: Error & { status?: number }) => e.status === 502);
  assert.throws(() => h('näme: x'), /header name/);
  assert.throws(() => h(': x'), /header line/);
  const ok = h("X-A!#$%&'*+-.^_`|~9: v1 \r\nHost: a.b");
  assert.deepEqual([ok.names, ok.values], [["x-a!#$%&'*+-.^_`|~9", 'host'], ['v1', 'a.b']]);
});
