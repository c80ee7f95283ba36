import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseImageRef } from './image-ref.js';

const HUB = 'registry-1.docker.io';

function ref(registry: string, repository: string, tag: string, digest = '') {
  return { registry, repository, tag, digest, labels: {} };
}

describe('parseImageRef', () => {
  test('single names are official images on Docker Hub', () => {
    assert.deepEqual(parseImageRef('nginx'), ref(HUB, 'library/nginx', 'latest'));
    assert.deepEqual(parseImageRef('nginx:1.27-alpine'), ref(HUB, 'library/nginx', '1.27-alpine'));
    assert.deepEqual(parseImageRef('  busybox  '), ref(HUB, 'library/busybox', 'latest'));
  });

  test('library/ is not doubled', () => {
    assert.deepEqual(parseImageRef('library/nginx:1'), ref(HUB, 'library/nginx', '1'));
  });

  test('user images stay on Docker Hub without library/', () => {
    assert.deepEqual(parseImageRef('flyio/hellofly:latest'), ref(HUB, 'flyio/hellofly', 'latest'));
    assert.deepEqual(parseImageRef('bitnami/redis'), ref(HUB, 'bitnami/redis', 'latest'));
  });

  test('docker.io names are Docker Hub names', () => {
    assert.deepEqual(parseImageRef('docker.io/library/busybox:latest'), ref(HUB, 'library/busybox', 'latest'));
    assert.deepEqual(parseImageRef('docker.io/nginx'), ref(HUB, 'library/nginx', 'latest'));
    assert.deepEqual(parseImageRef('index.docker.io/flyio/hellofly:v2'), ref(HUB, 'flyio/hellofly', 'v2'));
  });

  test('a first component with a dot is a registry', () => {
    assert.deepEqual(parseImageRef('ghcr.io/org/app:1.2.3'), ref('ghcr.io', 'org/app', '1.2.3'));
    assert.deepEqual(parseImageRef('registry.fly.io/my-app:deployment-01J'), ref('registry.fly.io', 'my-app', 'deployment-01J'));
    assert.deepEqual(parseImageRef('registry.example.test/hello:1.0'), ref('registry.example.test', 'hello', '1.0'));
  });

  test('a registry with a port', () => {
    assert.deepEqual(parseImageRef('registry.example.com:5000/team/app:2'), ref('registry.example.com:5000', 'team/app', '2'));
    assert.deepEqual(parseImageRef('myregistry:5000/app'), ref('myregistry:5000', 'app', 'latest'));
  });

  test('localhost is a registry, with or without a port', () => {
    assert.deepEqual(parseImageRef('localhost/app'), ref('localhost', 'app', 'latest'));
    assert.deepEqual(parseImageRef('localhost:5000/app:dev'), ref('localhost:5000', 'app', 'dev'));
  });

  test('a digest, with or without a tag', () => {
    const digest = 'sha256:' + 'a'.repeat(64);
    assert.deepEqual(parseImageRef(`nginx@${digest}`), ref(HUB, 'library/nginx', '', digest));
    assert.deepEqual(parseImageRef(`nginx:1.27@${digest}`), ref(HUB, 'library/nginx', '1.27', digest));
    assert.deepEqual(parseImageRef(`localhost:5000/app@${digest}`), ref('localhost:5000', 'app', '', digest));
  });

  test('a first component without dot, colon or localhost is part of the repository', () => {
    assert.deepEqual(parseImageRef('org/team/app:x'), ref(HUB, 'org/team/app', 'x'));
  });
});
