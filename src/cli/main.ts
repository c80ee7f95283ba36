/**
 * The `hangar` CLI entry: `runCli(argv, io)` parses argv, runs one command and returns the exit
 * code. It never calls `process.exit` and writes only to `io`, so tests run it in-process.
 * @module
 */
import { createInterface } from 'node:readline/promises';
import { HangarClient } from '../client/client.js';
import { HangarError } from '../core/errors.js';
import { COMMANDS, GROUPS } from './commands/index.js';
import { resolveCliConfig, noTokenError, type ResolvedCliConfig } from './config.js';
import { CliError, UsageError, formatError, type HintContext } from './errors.js';
import {
  bindPositionals,
  buildTree,
  helpText,
  parseArgs,
  resolveCommand,
  type CliIO,
  type Command,
  type CommandContext,
  type FlagSpecs,
  type FlagValues,
  type ArgValues,
  type PositionalSpecs,
} from './framework.js';
import { Output } from './output.js';

const TREE = buildTree(GROUPS, COMMANDS);

/** Runs the CLI; resolves to the process exit code. */
export async function runCli(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  // `hangar help machine stop` = `hangar machine stop --help`
  if (argv[0] === 'help') argv = [...argv.slice(1), '--help'];
  const fullIo: CliIO = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    ...(io.stdin ? { stdin: io.stdin } : io.stdout === undefined ? { stdin: process.stdin } : {}),
  };
  const debug = argv.includes('--debug');
  const hintContext: HintContext = { app: undefined, commandHints: {} };
  let clientInstance: HangarClient | undefined;
  try {
    const { node, tokens } = resolveCommand(TREE, argv);
    const command = node.command;
    const usageHint = `Run \`hangar ${node.path.join(' ')}${node.path.length ? ' ' : ''}--help\` for usage`;
    const parsed = parseArgs(command, tokens, usageHint);
    if (!command || parsed.global.help) {
      if (!command && parsed.positionals.length > 0) {
        const where = node.path.length ? `hangar ${node.path.join(' ')}` : 'hangar';
        throw new UsageError(`unknown command '${parsed.positionals[0]}' for '${where}'`, `Run \`${where} --help\` for the list of commands`);
      }
      fullIo.stdout.write(helpText(node));
      return 0;
    }
    const app = parsed.global.app || fullIo.env.HANGAR_APP || undefined;
    hintContext.app = app;
    hintContext.commandHints = command.hints;
    const args = bindPositionals(command, parsed.positionals, usageHint);
    if (parsed.rest.length > 0 && !command.acceptsRest) {
      throw new UsageError(`unexpected arguments after --: ${parsed.rest.join(' ')}`, usageHint);
    }
    let config: ResolvedCliConfig | undefined;
    const getConfig = () => (config ??= resolveCliConfig(fullIo.env));
    const context: CommandContext<FlagSpecs, PositionalSpecs> = {
      flags: parsed.flags as FlagValues<FlagSpecs>,
      args: args as ArgValues<PositionalSpecs>,
      rest: parsed.rest,
      global: { ...parsed.global, app },
      out: new Output(fullIo),
      io: fullIo,
      commandLine: `hangar ${command.path.join(' ')}`,
      requireApp: () => {
        if (app) return app;
        throw new UsageError(
          `\`hangar ${command.path.join(' ')}\` needs an app: pass -a APP (or set HANGAR_APP)`,
          'Run `hangar apps list` to see your apps',
        );
      },
      config: getConfig,
      client: () => {
        if (clientInstance) return clientInstance;
        const resolved = getConfig();
        if (!resolved.token) throw noTokenError();
        clientInstance = new HangarClient({
          baseUrl: resolved.apiUrl,
          token: resolved.token,
          ...(debug
            ? { onResponse: (r) => fullIo.stderr.write(`DEBUG ${r.method} ${r.url} → ${r.status}\n`) }
            : {}),
        });
        return clientInstance;
      },
      confirm: (question) => confirm(fullIo, question),
    };
    const code = await command.handler(context);
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof HangarError && err.code === 'not_found' && clientInstance && hintContext.app && !(err instanceof CliError)) {
      hintContext.appExists = await appExists(clientInstance, hintContext.app);
    }
    fullIo.stderr.write(formatError(err, hintContext, debug));
    return 1;
  }
}

/** For a `not_found` in an app-scoped command: is it the app that is missing? */
async function appExists(client: HangarClient, app: string): Promise<boolean | undefined> {
  try {
    await client.apps.get(app);
    return true;
  } catch (err) {
    return err instanceof HangarError && err.code === 'not_found' ? false : undefined;
  }
}

async function confirm(io: CliIO, question: string): Promise<boolean | undefined> {
  const stdin = io.stdin;
  if (!stdin?.isTTY) return undefined;
  const rl = createInterface({ input: stdin, output: io.stdout as NodeJS.WritableStream });
  try {
    const answer = await rl.question(`? ${question} (y/N) `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export type { Command };
