import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyFramer, CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE, CONNECTION_NAMES_HEADERS, CONNECTION_UPGRADE, connectionHeaderNames, connectionTokens, headEnd, headerValue, parseRequestHead, parseResponseHead, requestFraming, requestTarget, RESPONSE_DROP, responseFraming, scannedFraming, scannedRequestFraming, scanRequestHead, scanResponseHead } from './http-codec.js';
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

test('scanResponseHead agrees with parseResponseHead: kept lines, acted-on values, refusals', async () => {
  const DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'via', 'fly-request-id']);
  assert.deepEqual(new Set(RESPONSE_DROP), DROP, 'the set the string path drops is the one the scanner drops');
  const heads = [
    'HTTP/1.1 200 OK',
    'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 12\r\nConnection: keep-alive',
    'HTTP/1.0 404 Not Found\r\nVia: 1.1 a\r\nKEEP-ALIVE: timeout=5\r\ncontent-length:  7 \r\nVia: 1.0 b\r\nX-Z: 1',
    'HTTP/1.1 204 \r\nFly-Request-Id: spoofed\r\nProxy-Connection: x\r\nConnection: close\r\nconnection: keep-alive',
    'HTTP/1.1 200 Fine\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nX-Via: kept\r\nContent-Lengthx: 3',
    'HTTP/1.1 503',
    'HTTP/1.1 302 Found\r\nLocation: /x\r\nfly-replay: region=ams',
    // Values trimmed like String#trim (VT, FF, NBSP too), as the string parser does.
    'HTTP/1.1 200 OK\r\nVia:\x0b1.0 c\xa0\r\nContent-Length: \x0c5\t',
  ];
  for (const text of heads) {
    const buf = Buffer.from(`${text}\r\n\r\nBODY`, 'latin1');
    const end = buf.indexOf('\r\n\r\n');
    const s = scanResponseHead(buf, end);
    const h = parseResponseHead(text);
    assert.equal(s.status, h.status, text);
    assert.equal(s.minor, h.minor, text);
    assert.equal(buf.toString('latin1', s.reasonStart, s.reasonEnd), h.reason, text);
    const lines = text.split('\r\n').slice(1);
    const kept = `${h.reason}\r\n${lines.filter((l) => !DROP.has(l.slice(0, l.indexOf(':')).toLowerCase())).map((l) => `${l}\r\n`).join('')}`;
    let got = '';
    for (let i = 0; i < s.keep.length; i += 2) got += buf.toString('latin1', s.keep[i]!, s.keep[i + 1]!);
    assert.equal(got, kept, text);
    assert.equal(s.keptBytes, kept.length, text);
    assert.equal(s.connection, headerValue(h, 'connection'), text);
    const last = (n: string) => h.values.filter((_, i) => h.names[i] === n).at(-1);
    assert.equal(s.via, last('via'), text);
    assert.equal(s.flyReplay, headerValue(h, 'fly-replay') !== undefined, text);
    for (const method of ['GET', 'HEAD']) assert.deepEqual(scannedFraming(s, method), responseFraming(h, method), `${text} ${method}`);
  }
  const refused = [
    'HTTP/1.1 20 OK', 'HTTP/2 200 OK', 'HTTP/1.1 200OK', 'HTTP/1.1 200 OK\r\nx: \0', 'HTTP/1.1 200 OK\r\nx: a\nb: c', 'HTTP/1.1 200 O\rK',
    'HTTP/1.1 200 OK\r\nbad name: x', 'HTTP/1.1 200 OK\r\n: x', 'HTTP/1.1 200 OK\r\n folded', 'ICY 200 OK',
  ];
  for (const text of refused) {
    const buf = Buffer.from(`${text}\r\n\r\n`, 'latin1');
    assert.throws(() => parseResponseHead(text), `string parser accepts ${JSON.stringify(text)}`);
    assert.throws(() => scanResponseHead(buf, buf.indexOf('\r\n\r\n')), `scanner accepts ${JSON.stringify(text)}`);
  }
  const many = Buffer.from(`HTTP/1.1 200 OK\r\n${Array.from({ length: 1001 }, () => 'a: b').join('\r\n')}\r\n\r\n`);
  assert.throws(() => scanResponseHead(many, many.indexOf('\r\n\r\n')), /header fields/);
});

test('scanRequestHead refuses and answers exactly like parseRequestHead + requestFraming', async () => {
  const heads = [
    'GET / HTTP/1.1\r\nHost: a.b',
    'GET /x?y=1 HTTP/1.0',
    'POST /p HTTP/1.1\r\nhost:  a.b \r\nHOST: second\r\nContent-Length: 5\r\ncontent-length: 5\r\nConnection: Keep-Alive\r\nconnection: Upgrade, X-Secret\r\nUpgrade: websocket\r\nupgrade: other',
    'PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\nVia: 1.0 a\r\nvia: 1.1 b',
    "GET / HTTP/1.1\r\nFly-Force-Instance-Id: m1\r\nfly-prefer-region: ams, fra\r\nX-A!#$%&'*+-.^_`|~9: v1 \r\nTE: trailers\r\nx: \tpad\t",
    'GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6',
    'GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked',
    'GET / HTTP/1.1\r\nContent-Length: -1',
    'GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip',
    'OPTIONS * HTTP/1.1\r\nHost: a\r\nContent-Length: 0',
  ];
  const refused = [
    'GET /\r\nHost: a', 'GET  / HTTP/1.1', 'GET / HTTP/1.2', 'GET / HTTP/1.1 ', 'G@T / HTTP/1.1', ' GET / HTTP/1.1', 'GET /\ta HTTP/1.1',
    'GET /\u00a0 HTTP/1.1', 'GET / http/1.1', 'GET / HTTP/1.1\r\nBad Name: x', 'GET / HTTP/1.1\r\n: x', 'GET / HTTP/1.1\r\nnocolon',
    'GET / HTTP/1.1\r\n folded: x', 'GET / HTTP/1.1\r\na: b\0', 'GET / HTTP/1.1\r\na: b\rc', 'GET / HTTP/1.1\r\na: b\nc: d', '\nGET / HTTP/1.1',
    'GET /\0 HTTP/1.1', 'GET / HTTP/1.1\r\nnäme: x', `GET / HTTP/1.1\r\n${Array.from({ length: 101 }, () => 'a: b').join('\r\n')}`,
    `GET / HTTP/1.1\r\n${Array.from({ length: 101 }, () => 'bad line').join('\r\n')}`, 'GET / HTTP/1.1\r',
  ];
  const outcome = (f: () => unknown) => {
    try {
      return { ok: f() };
    } catch (err) {
      return { status: (err as { status?: number }).status, message: (err as Error).message };
    }
  };
  for (const text of [...heads, ...refused]) {
    const buf = Buffer.from(`${text}\r\n\r\nNEXT`, 'latin1');
    const end = text.length;
    const viaString = outcome(() => {
      const h = parseRequestHead(text, 100);
      const framing = outcome(() => requestFraming(h));
      const first = (n: string) => headerValue(h, n);
      const all = (n: string) => h.values.filter((_, i) => h.names[i] === n);
      return {
        method: h.method, target: h.target, minor: h.minor, framing, host: first('host'), upgrade: first('upgrade'),
        force: first('fly-force-instance-id'), prefer: first('fly-prefer-region'),
        connection: all('connection').map((v) => v.toLowerCase()).join(', '), xff: all('x-forwarded-for').join(', ') || undefined, via: all('via').at(-1),
      };
    });
    const viaScan = outcome(() => {
      const s = scanRequestHead(buf, end, 100);
      return {
        method: s.method, target: requestTarget(s, buf), minor: s.minor, framing: outcome(() => scannedRequestFraming(s)), host: s.host, upgrade: s.upgrade,
        force: s.forceInstance, prefer: s.preferRegion, connection: s.connection, xff: s.forwardedFor, via: s.via,
      };
    });
    assert.deepEqual(viaScan, viaString, JSON.stringify(text));
    if (refused.includes(text)) assert.ok('status' in viaScan, `refused: ${JSON.stringify(text)}`);
  }
});

test('headEnd finds the first CRLFCRLF exactly where indexOf does (random CR/LF-heavy buffers, offsets, long heads)', () => {
  const CRLFCRLF = Buffer.from('\r\n\r\n');
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = [13, 10, 97, 58];
  for (let n = 0; n < 3000; n++) {
    const len = Math.floor(rand() * 40);
    const buf = Buffer.from(Array.from({ length: len }, () => alphabet[Math.floor(rand() * alphabet.length)]!));
    const from = Math.floor(rand() * 4);
    assert.equal(headEnd(buf, from), buf.indexOf(CRLFCRLF, from), JSON.stringify(buf.toString('latin1')) + ` from ${from}`);
  }
  const long = Buffer.from(`GET / HTTP/1.1\r\n${'x-filler: yes\r\n'.repeat(300)}\r\nbody`, 'latin1');
  assert.equal(headEnd(long), long.indexOf(CRLFCRLF));
  assert.equal(headEnd(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r')), -1);
  // The end bound holds for long ranges too (they search natively).
  const longEnd = long.indexOf(CRLFCRLF);
  assert.equal(headEnd(long, 0, longEnd + 3), -1);
  assert.equal(headEnd(long, 0, longEnd + 4), longEnd);
  assert.equal(headEnd(Buffer.from('ab\r\n\r\n'), 0, 5), -1);
});

test('Connection values: the usual tokens as bits, and whether other tokens name headers to drop', () => {
  assert.equal(connectionTokens('keep-alive'), CONNECTION_KEEP_ALIVE);
  assert.equal(connectionTokens('Upgrade, close'), CONNECTION_UPGRADE | CONNECTION_CLOSE);
  assert.equal(connectionTokens('keep-alive, X-Secret'), CONNECTION_KEEP_ALIVE | CONNECTION_NAMES_HEADERS);
  assert.deepEqual(connectionHeaderNames('close, x-a , , upgrade,x-b'), ['x-a', 'x-b']);
  assert.deepEqual(connectionHeaderNames('keep-alive'), []);
});
