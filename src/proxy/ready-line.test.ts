import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProxyReadyLine, proxyReadyLine, type ProxyReady } from './ready-line.js';

test('the proxy ready line reads back as what was printed, with and without HTTPS and metrics', () => {
  const cases: ProxyReady[] = [
    { url: 'http://127.0.0.1:8080', httpsUrl: 'https://127.0.0.1:8443', metricsUrl: 'http://127.0.0.1:9091/metrics', appDomain: 'localhost', region: 'lcl' },
    { url: 'http://0.0.0.0:80', httpsUrl: undefined, metricsUrl: undefined, appDomain: 'apps.example.com', region: 'ams' },
  ];
  for (const c of cases) assert.deepEqual(parseProxyReadyLine(proxyReadyLine(c)), c);
  assert.equal(parseProxyReadyLine('hangar proxy: shutting down'), undefined);
  assert.equal(parseProxyReadyLine('{"level":"info","msg":"hangar proxy: http://x"}'), undefined);
});
