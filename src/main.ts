/**
 * The process entry point behind `bin/hangar`: server roles by name, everything else is the CLI.
 * Only this file and the role `main`s read argv and the environment.
 * @module
 */
const [role, ...rest] = process.argv.slice(2);

async function main(): Promise<number> {
  switch (role) {
    case 'up':
      return (await import('./up/up.js')).runUp(rest);
    case 'api':
      return (await import('./up/api-main.js')).runApiMain(rest);
    case 'agent':
      return (await import('./agent/main.js')).runAgentMain(rest);
    case 'proxy':
      return (await import('./proxy/main.js')).runProxyMain(rest);
    case 'host':
      return (await import('./host/main.js')).runHostMain(rest);
    default:
      return (await import('./cli/main.js')).runCli(process.argv.slice(2));
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.argv.includes('--debug') && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  },
);
