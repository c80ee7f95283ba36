import { readFileSync } from 'node:fs';
import { createCommand } from '../../framework.js';

/** The version in package.json (dist/src/cli/commands/version/version.js → repository root). */
function hangarVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** flyctl's `fly version`, for bug reports: which Hangar, on which platform and Node. */
export const version = createCommand({
  path: ['version'],
  description: 'Show the Hangar version',
  long: 'Prints the version of this Hangar checkout, the platform and the Node.js it runs on.',
  handler({ global, out }) {
    const info = { version: hangarVersion(), os: process.platform, arch: process.arch, node: process.version };
    if (global.json) return out.json(info);
    out.line(`hangar v${info.version} ${info.os}/${info.arch} node ${info.node}`);
  },
});
