/**
 * A tiny declarative command framework in the style of wrangler's `createCommand`: each command
 * declares its positional arguments and flags, and its handler receives them parsed and typed.
 * Commands are addressed `hangar <noun> <verb>` (`hangar machine leases view` nests one deeper);
 * groups and verbs carry flyctl's aliases.
 *
 * Global flags (every command): `-a/--app`, `-j/--json`, `--debug`, `-h/--help`.
 * @module
 */
import type { HangarClient } from '../client/client.js';
import type { ErrorCode } from '../core/error-codes.js';
import { UsageError } from './errors.js';
import type { Output } from './output.js';
import type { ResolvedCliConfig } from './config.js';

export interface FlagSpec {
  /** `string`: one value; `boolean`: no value; `array`: repeatable, values collected in order. */
  type: 'string' | 'boolean' | 'array';
  /** One-letter short form, without the dash. */
  short?: string;
  description: string;
  /** Placeholder shown in help (`--signal SIGNAL`). */
  valueName?: string;
  /** Default value for a `string` flag (shown in help). */
  default?: string;
  /** Other long names accepted for this flag. */
  aliases?: string[];
}

export interface PositionalSpec {
  description: string;
  /** Name shown in usage and errors (default: the key upper-cased). */
  label?: string;
  required?: boolean;
  /** Takes every remaining positional argument (must be last). */
  variadic?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type PositionalSpecs = Record<string, PositionalSpec>;

export type FlagValues<F extends FlagSpecs> = {
  [K in keyof F]: F[K]['type'] extends 'boolean' ? boolean : F[K]['type'] extends 'array' ? string[] : F[K] extends { default: string } ? string : string | undefined;
};

export type ArgValues<P extends PositionalSpecs> = {
  [K in keyof P]: P[K] extends { variadic: true } ? string[] : P[K] extends { required: true } ? string : string | undefined;
};

export interface CliIO {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  env: Record<string, string | undefined>;
  /** Used only for confirmations; prompts happen only when it is a TTY. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

export interface GlobalFlags {
  app: string | undefined;
  json: boolean;
  debug: boolean;
  help: boolean;
}

export interface CommandContext<F extends FlagSpecs, P extends PositionalSpecs> {
  flags: FlagValues<F>;
  args: ArgValues<P>;
  /** Everything after a bare `--`. */
  rest: string[];
  global: GlobalFlags;
  out: Output;
  io: CliIO;
  /** `hangar machine stop`, for messages. */
  commandLine: string;
  /** The app from `-a/--app` (or `HANGAR_APP`); throws a usage error naming the command when absent. */
  requireApp(): string;
  /** The API client for the resolved config; throws when no token is configured. */
  client(): HangarClient;
  config(): ResolvedCliConfig;
  /** Asks a yes/no question when stdin is a TTY; returns undefined when it cannot ask. */
  confirm(question: string): Promise<boolean | undefined>;
}

export interface CommandDefinition<F extends FlagSpecs, P extends PositionalSpecs> {
  /** Words after `hangar`, e.g. `['machine', 'stop']`. */
  path: string[];
  /** Other names for the last word (`ls`, `rm`, …). */
  aliases?: string[];
  description: string;
  /** Extra paragraphs for `--help`. */
  long?: string;
  examples?: string[];
  args?: P;
  flags?: F;
  /** Accepts `-- ARGS...` after the positionals. */
  acceptsRest?: string;
  /** Operates on one app (`-a` is required); used for help and error hints. */
  appScoped?: boolean;
  /** Hints by error code that are more specific than the generic ones. */
  hints?: Partial<Record<ErrorCode, string>>;
  /** Returns the exit code (0 when nothing is returned). */
  handler(ctx: CommandContext<F, P>): Promise<number | void> | number | void;
}

/** A command with its types erased, as the registry stores it. */
export interface Command {
  path: string[];
  aliases: string[];
  description: string;
  long?: string;
  examples: string[];
  args: PositionalSpecs;
  flags: FlagSpecs;
  acceptsRest?: string;
  appScoped: boolean;
  hints: Partial<Record<ErrorCode, string>>;
  handler(ctx: CommandContext<FlagSpecs, PositionalSpecs>): Promise<number | void> | number | void;
}

export function createCommand<F extends FlagSpecs = {}, P extends PositionalSpecs = {}>(definition: CommandDefinition<F, P>): Command {
  const positionals = Object.entries(definition.args ?? {});
  positionals.forEach(([name, spec], index) => {
    if (spec.variadic && index !== positionals.length - 1) throw new Error(`${definition.path.join(' ')}: variadic argument ${name} must be last`);
  });
  return {
    path: definition.path,
    aliases: definition.aliases ?? [],
    description: definition.description,
    ...(definition.long ? { long: definition.long } : {}),
    examples: definition.examples ?? [],
    args: definition.args ?? {},
    flags: definition.flags ?? {},
    ...(definition.acceptsRest ? { acceptsRest: definition.acceptsRest } : {}),
    appScoped: definition.appScoped ?? false,
    hints: definition.hints ?? {},
    handler: definition.handler as Command['handler'],
  };
}

/** A noun (`machine`) or sub-noun (`machine leases`) that groups commands. */
export interface Group {
  path: string[];
  aliases?: string[];
  description: string;
}

export const GLOBAL_FLAGS: FlagSpecs = {
  app: { type: 'string', short: 'a', description: 'App name (or set HANGAR_APP)', valueName: 'APP' },
  json: { type: 'boolean', short: 'j', description: 'Print the raw API JSON' },
  debug: { type: 'boolean', description: 'Print HTTP requests and stack traces' },
  help: { type: 'boolean', short: 'h', description: 'Help for this command' },
};

export interface TreeNode {
  name: string;
  path: string[];
  aliases: string[];
  description: string;
  children: TreeNode[];
  command?: Command;
}

export function buildTree(groups: Group[], commands: Command[]): TreeNode {
  const root: TreeNode = { name: 'hangar', path: [], aliases: [], description: 'Hangar: a self-hostable Fly.io', children: [] };
  const ensure = (path: string[]): TreeNode => {
    let node = root;
    for (const word of path) {
      let child = node.children.find((c) => c.name === word);
      if (!child) {
        child = { name: word, path: [...node.path, word], aliases: [], description: '', children: [] };
        node.children.push(child);
      }
      node = child;
    }
    return node;
  };
  for (const group of groups) {
    const node = ensure(group.path);
    node.aliases = group.aliases ?? [];
    node.description = group.description;
  }
  for (const command of commands) {
    const node = ensure(command.path);
    node.aliases = command.aliases;
    node.description = command.description;
    node.command = command;
  }
  return root;
}

function findChild(node: TreeNode, word: string): TreeNode | undefined {
  return node.children.find((c) => c.name === word) ?? node.children.find((c) => c.aliases.includes(word));
}

export interface Resolution {
  node: TreeNode;
  /** Tokens left for flag and positional parsing (global flags seen before the verb included). */
  tokens: string[];
}

/** Walks the words of argv down the tree; flags met on the way are kept for the leaf. */
export function resolveCommand(root: TreeNode, argv: string[]): Resolution {
  let node = root;
  const pending: string[] = [];
  let index = 0;
  while (index < argv.length && !node.command) {
    const token = argv[index]!;
    if (token === '--') break;
    if (token.startsWith('-') && token !== '-') {
      pending.push(token);
      index++;
      const spec = lookupFlag(GLOBAL_FLAGS, token);
      if (spec && spec[1].type !== 'boolean' && !token.includes('=') && index < argv.length) pending.push(argv[index++]!);
      continue;
    }
    const child = findChild(node, token);
    if (!child) {
      const where = node === root ? 'hangar' : `hangar ${node.path.join(' ')}`;
      throw new UsageError(`unknown command '${token}' for '${where}'`, `Run \`${where} --help\` for the list of commands`);
    }
    node = child;
    index++;
  }
  return { node, tokens: [...pending, ...argv.slice(index)] };
}

function lookupFlag(specs: FlagSpecs, token: string): [string, FlagSpec] | undefined {
  if (token.startsWith('--')) {
    const name = token.slice(2).split('=')[0]!;
    return Object.entries(specs).find(([key, spec]) => key === name || spec.aliases?.includes(name));
  }
  const short = token.slice(1, 2);
  return Object.entries(specs).find(([, spec]) => spec.short === short);
}

export interface ParsedArgs {
  flags: Record<string, string | boolean | string[] | undefined>;
  global: GlobalFlags;
  positionals: string[];
  rest: string[];
}

/** Parses flags (`--name value`, `--name=value`, `-n value`, `-nvalue`) and positionals. */
export function parseArgs(command: Command | undefined, tokens: string[], usageHint: string): ParsedArgs {
  const local = command?.flags ?? {};
  const all: FlagSpecs = { ...local, ...GLOBAL_FLAGS };
  const values: Record<string, string | boolean | string[] | undefined> = {};
  for (const [name, spec] of Object.entries(all)) {
    values[name] = spec.type === 'boolean' ? false : spec.type === 'array' ? [] : spec.default;
  }
  const positionals: string[] = [];
  let rest: string[] = [];
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index]!;
    if (token === '--') {
      rest = tokens.slice(index + 1);
      break;
    }
    if (!token.startsWith('-') || token === '-' || /^-\d/.test(token)) {
      positionals.push(token);
      continue;
    }
    const found = lookupFlag(all, token);
    const display = token.startsWith('--') ? token.split('=')[0]! : token.slice(0, 2);
    if (!found) throw new UsageError(`unknown flag: ${display}`, usageHint);
    const [name, spec] = found;
    let inline: string | undefined;
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      if (eq >= 0) inline = token.slice(eq + 1);
    } else if (token.length > 2) {
      inline = token.slice(2).replace(/^=/, '');
    }
    if (spec.type === 'boolean') {
      if (inline === undefined || inline === 'true') values[name] = true;
      else if (inline === 'false') values[name] = false;
      else throw new UsageError(`${display}: expected true or false, got '${inline}'`, usageHint);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (index + 1 >= tokens.length) throw new UsageError(`flag needs an argument: ${display}`, usageHint);
      value = tokens[++index]!;
    }
    if (spec.type === 'array') (values[name] as string[]).push(value);
    else values[name] = value;
  }
  const global: GlobalFlags = {
    app: values.app as string | undefined,
    json: values.json as boolean,
    debug: values.debug as boolean,
    help: values.help as boolean,
  };
  const flags: Record<string, string | boolean | string[] | undefined> = {};
  for (const name of Object.keys(local)) flags[name] = values[name];
  return { flags, global, positionals, rest };
}

/** Assigns positionals to the command's declared arguments, checking counts. */
export function bindPositionals(command: Command, positionals: string[], usageHint: string): Record<string, string | string[] | undefined> {
  const specs = Object.entries(command.args);
  const bound: Record<string, string | string[] | undefined> = {};
  let index = 0;
  for (const [name, spec] of specs) {
    if (spec.variadic) {
      bound[name] = positionals.slice(index);
      index = positionals.length;
      if (spec.required && (bound[name] as string[]).length === 0) {
        throw new UsageError(`missing ${argLabel(name, spec)}: usage \`${usageLine(command)}\``, usageHint);
      }
    } else {
      bound[name] = positionals[index];
      if (positionals[index] !== undefined) index++;
      else if (spec.required) throw new UsageError(`missing ${argLabel(name, spec)}: usage \`${usageLine(command)}\``, usageHint);
    }
  }
  if (index < positionals.length) {
    const extra = positionals.slice(index).map((p) => `'${p}'`).join(', ');
    throw new UsageError(`unexpected argument${positionals.length - index > 1 ? 's' : ''} ${extra}: usage \`${usageLine(command)}\``, usageHint);
  }
  return bound;
}

function labelOf(name: string, spec: PositionalSpec): string {
  return spec.label ?? name.toUpperCase();
}

function argLabel(name: string, spec: PositionalSpec): string {
  const label = labelOf(name, spec);
  return label === 'ID' ? 'machine ID' : label;
}

export function usageLine(command: Command): string {
  const parts = ['hangar', ...command.path];
  for (const [name, spec] of Object.entries(command.args)) {
    const label = `${labelOf(name, spec)}${spec.variadic ? '...' : ''}`;
    parts.push(spec.required ? label : `[${label}]`);
  }
  if (command.acceptsRest) parts.push(`[-- ${command.acceptsRest}...]`);
  parts.push('[flags]');
  return parts.join(' ');
}

function flagRows(specs: FlagSpecs): string[][] {
  return Object.entries(specs).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = spec.type === 'boolean' ? '' : ` ${spec.valueName ?? (spec.type === 'array' ? 'VALUE' : 'string')}`;
    const more = spec.aliases?.length ? ` (also --${spec.aliases.join(', --')})` : '';
    const repeat = spec.type === 'array' ? ' (repeatable)' : '';
    const def = spec.default !== undefined ? ` (default ${spec.default})` : '';
    return [`  ${short}--${name}${value}`, `${spec.description}${repeat}${def}${more}`];
  });
}

function twoColumns(rows: string[][]): string {
  const width = Math.max(0, ...rows.map((r) => r[0]!.length));
  return rows.map(([a, b]) => `${a!.padEnd(width)}   ${b}`.trimEnd()).join('\n');
}

export function helpText(node: TreeNode): string {
  const lines: string[] = [];
  const command = node.command;
  if (command) {
    lines.push(command.description, '');
    if (command.long) lines.push(command.long, '');
    lines.push('Usage:', `  ${usageLine(command)}`, '');
    if (command.aliases.length) lines.push('Aliases:', `  ${[command.path.at(-1), ...command.aliases].join(', ')}`, '');
    const args = Object.entries(command.args);
    if (args.length) {
      lines.push('Arguments:', twoColumns(args.map(([name, spec]) => [`  ${labelOf(name, spec)}${spec.variadic ? '...' : ''}`, spec.description])), '');
    }
    if (command.examples.length) lines.push('Examples:', ...command.examples.map((e) => `  ${e}`), '');
    if (Object.keys(command.flags).length) lines.push('Flags:', twoColumns(flagRows(command.flags)), '');
    lines.push('Global Flags:', twoColumns(flagRows(GLOBAL_FLAGS)));
    return `${lines.join('\n')}\n`;
  }
  const title = node.path.length ? `hangar ${node.path.join(' ')}` : 'hangar';
  lines.push(node.description || title, '', 'Usage:', `  ${title} <command> [flags]`, '');
  if (node.aliases.length) lines.push('Aliases:', `  ${[node.name, ...node.aliases].join(', ')}`, '');
  lines.push('Available Commands:', twoColumns(node.children.map((c) => [`  ${c.name}`, c.description])), '');
  lines.push('Global Flags:', twoColumns(flagRows(GLOBAL_FLAGS)), '');
  if (node.path.length === 0) lines.push('Platform roles: `hangar up` (everything on this host), `hangar api`, `hangar agent`.', '');
  lines.push(`Use "${title} <command> --help" for more information about a command.`);
  return `${lines.join('\n')}\n`;
}
