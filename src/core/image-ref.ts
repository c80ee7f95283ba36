/**
 * Splits an image reference (`registry/repository:tag@digest`) the way Docker does: the first path
 * component is a registry only when it has a dot, a colon or is `localhost`; otherwise the image is
 * on Docker Hub (`registry-1.docker.io`, with `library/` for single names).
 * @module
 */
import type { ImageRef } from '../api-types/machine.js';

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export function parseImageRef(image: string): ImageRef {
  let rest = image.trim();
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let registry = 'registry-1.docker.io';
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      // `docker.io/nginx` is Docker Hub too, and names the same image as `nginx`.
      registry = DOCKER_HUB_ALIASES.has(first) ? registry : first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag = '';
  const colon = rest.lastIndexOf(':');
  if (colon > 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!tag && !digest) tag = 'latest';
  const repository = registry === 'registry-1.docker.io' && !rest.includes('/') ? `library/${rest}` : rest;
  return { registry, repository, tag, digest, labels: {} };
}
