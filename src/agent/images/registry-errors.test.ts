import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../core/logger.js';
import { buildBusyboxImage, type BuiltImage } from '../../testkit/images.js';
import { freeLoopbackPort, missingTools } from '../../testkit/registry.js';
import { ImageStore } from './image-store.js';
import { parseChallenge } from './registry-client.js';
import { rejectsWith } from '../../testkit/assertions.js';

const skip = missingTools(['umoci']).length > 0 ? 'umoci not installed (run `hangar host setup`)' :
  process.getuid?.() !== 0 ? 'unpacking with ownership needs root' : false;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; host: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * A registry in a few lines, serving one OCI layout: optional bearer-token auth and a corrupt-layer
 * mode that serves different bytes than the manifest's digest says.
 */
function layoutRegistry(image: BuiltImage, options: { token?: string; corruptLayer?: boolean; host: () => string }): Handler {
  const blob = (digest: string) => readFileSync(join(image.layoutDir, 'blobs', 'sha256', digest.slice(7)));
  return (req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/token') {
      assert.equal(url.searchParams.get('service'), 'fake-registry');
      assert.equal(url.searchParams.get('scope'), 'repository:app:pull');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: options.token }));
      return;
    }
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="http://${options.host()}/token",service="fake-registry",scope="repository:app:pull"`,
      }).end();
      return;
    }
    const m = /^\/v2\/app\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    if (m[1] === 'manifests') {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(blob(image.manifestDigest));
      return;
    }
    let body = blob(m[2]!);
    if (options.corruptLayer && image.layers.some((l) => l.digest === m[2])) {
      body = Buffer.from(body);
      const at = body.length >> 1;
      body[at] = body[at]! ^ 0xff;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  };
}


describe('ImageStore against broken and unusual registries', { skip, timeout: 60_000 }, () => {
  let dir: string;
  let image: BuiltImage;
  const servers: Server[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hangar-images-errors-'));
    image = buildBusyboxImage({ dir: join(dir, 'layout'), tag: 'v1', files: { 'etc/marker': 'fake-registry' } });
  });
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const newStore = (name: string) => new ImageStore({ dir: join(dir, name), logger: silentLogger, manifestTimeoutMs: 3000, stallTimeoutMs: 3000 });
  const assertNoPartialState = (name: string) => {
    assert.deepEqual(readdirSync(join(dir, name, 'tmp')), [], 'no temp files left');
    assert.deepEqual(readdirSync(join(dir, name, 'rootfs')), [], 'nothing unpacked');
    const index = JSON.parse(readFileSync(join(dir, name, 'oci', 'index.json'), 'utf8')) as { manifests: unknown[] };
    assert.deepEqual(index.manifests, [], 'no refs');
  };

  it('registry down (closed port): unavailable, naming the registry', { timeout: 10_000 }, async () => {
    const port = await freeLoopbackPort();
    await rejectsWith(newStore('down').resolve(`127.0.0.1:${port}/app:v1`), 'unavailable',
      new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${port} to pull 127\\.0\\.0\\.1:${port}/app:v1 \\(ECONNREFUSED\\); check that the registry is running`));
    assertNoPartialState('down');
  });

  it('HTTPS registries that are not reachable say so and mention insecureRegistries', { timeout: 10_000 }, async () => {
    const port = await freeLoopbackPort();
    const store = new ImageStore({ dir: join(dir, 'tls'), logger: silentLogger, manifestTimeoutMs: 3000 });
    // A name that is not loopback by spelling but resolves nowhere routable fast: use a bogus TLD.
    await rejectsWith(store.resolve(`registry.invalid:${port}/app:v1`), 'unavailable', /cannot reach registry registry\.invalid:\d+ .*HTTPS .*insecureRegistries/);
  });

  it('garbage answers: unavailable, "not an image manifest"', { timeout: 10_000 }, async () => {
    const { server, host } = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
    servers.push(server);
    await rejectsWith(newStore('garbage').resolve(`${host}/app:v1`), 'unavailable',
      new RegExp(`registry ${host.replace(/\./g, '\\.')} answered something that is not an image manifest for ${host.replace(/\./g, '\\.')}/app:v1`));
    assertNoPartialState('garbage');
    const { server: s2, host: h2 } = await serve((_req, res) => res.writeHead(200).end('{"schemaVersion":2,"hello":"world"}'));
    servers.push(s2);
    await rejectsWith(newStore('garbage2').resolve(`${h2}/app:v1`), 'unavailable', /not an image manifest/);
    const { server: s3, host: h3 } = await serve((_req, res) => res.writeHead(500).end('internal oops'));
    servers.push(s3);
    await rejectsWith(newStore('garbage3').resolve(`${h3}/app:v1`), 'unavailable', /answered HTTP 500 for manifest v1 .*internal oops/);
  });

  it('a server that never answers times out as unavailable', { timeout: 10_000 }, async () => {
    const { server, host } = await serve(() => {});
    servers.push(server);
    await rejectsWith(newStore('hang').resolve(`${host}/app:v1`), 'unavailable', /did not answer in time/);
  });

  it('corrupt layer: unavailable, blob discarded, nothing stored', { timeout: 15_000 }, async () => {
    let host = '';
    const s = await serve(layoutRegistry(image, { corruptLayer: true, host: () => host }));
    host = s.host;
    servers.push(s.server);
    const err = await rejectsWith(newStore('corrupt').resolve(`${host}/app:v1`), 'unavailable',
      /blob sha256:[0-9a-f]{64} of image .* is corrupt \(content hashes to sha256:[0-9a-f]{64}\); the download was discarded/);
    assert.ok(err.message.includes(image.layers[0]!.digest));
    assertNoPartialState('corrupt');
    assert.equal(existsSync(join(dir, 'corrupt', 'oci', 'blobs', 'sha256', image.layers[0]!.digest.slice(7))), false);
  });

  it('anonymous bearer-token auth (WWW-Authenticate → token → retry)', { timeout: 15_000 }, async () => {
    let host = '';
    const s = await serve(layoutRegistry(image, { token: 'tok-123', host: () => host }));
    host = s.host;
    servers.push(s.server);
    const img = await newStore('auth').resolve(`${host}/app:v1`);
    assert.equal(img.digest, image.manifestDigest);
    assert.equal(readFileSync(join(img.rootfsDir, 'etc/marker'), 'utf8'), 'fake-registry');
  });

  it('a digest reference whose manifest does not match is refused', { timeout: 10_000 }, async () => {
    let host = '';
    const s = await serve(layoutRegistry(image, { host: () => host }));
    host = s.host;
    servers.push(s.server);
    const wrong = `sha256:${'0'.repeat(64)}`;
    await rejectsWith(newStore('wrongdigest').resolve(`${host}/app@${wrong}`), 'unavailable', /answered manifest sha256:[0-9a-f]+ .* when asked for sha256:0+/);
  });

  it('basic credentials: refused without them (invalid_argument), pulled with them', { timeout: 15_000 }, async () => {
    let host = '';
    const inner = layoutRegistry(image, { host: () => host });
    const expected = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    const s = await serve((req, res) => {
      if (req.headers.authorization !== expected) res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
      else inner(req, res);
    });
    host = s.host;
    servers.push(s.server);
    await rejectsWith(newStore('basic-none').resolve(`${host}/app:v1`), 'invalid_argument', /refused to serve .* \(HTTP 401\).*credentials/);
    const store = new ImageStore({ dir: join(dir, 'basic'), logger: silentLogger, credentials: { [host]: { username: 'alice', password: 's3cret' } } });
    assert.equal((await store.resolve(`${host}/app:v1`)).digest, image.manifestDigest);
  });

  it('an aborted resolve stops waiting at once and leaves nothing behind', { timeout: 10_000 }, async () => {
    const { server, host } = await serve(() => {});
    servers.push(server);
    const ac = new AbortController();
    const store = new ImageStore({ dir: join(dir, 'abort'), logger: silentLogger });
    const started = Date.now();
    setTimeout(() => ac.abort(new Error('machine destroyed')), 100);
    await assert.rejects(store.resolve(`${host}/app:v1`, { signal: ac.signal }), /machine destroyed/);
    assert.ok(Date.now() - started < 2000);
    assertNoPartialState('abort');
  });

  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(parseChallenge('realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'),
      { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' });
  });
});
