/**
 * Output for people and for scripts: aligned, borderless tables with upper-cased headers (as
 * flyctl's `render.Table`), key/value blocks (`render.VerticalTable`) and `--json`.
 * @module
 */
import type { CliIO } from './framework.js';

/** Renders rows as left-aligned columns separated by two spaces; headers are upper-cased. */
export function renderTable(headers: string[], rows: (string | number | undefined)[][], title?: string): string {
  const cells = [headers.map((h) => h.toUpperCase()), ...rows.map((row) => headers.map((_, i) => cellText(row[i])))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const lines = cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
  return `${title ? `${title}\n` : ''}${lines.join('\n')}\n`;
}

/** Renders `key = value` lines under an optional title, keys padded to one width. */
export function renderVertical(pairs: [string, string | number | undefined][], title?: string): string {
  const width = Math.max(0, ...pairs.map(([key]) => key.length));
  const lines = pairs.map(([key, value]) => `  ${key.padEnd(width)} = ${cellText(value)}`.trimEnd());
  return `${title ? `${title}\n` : ''}${lines.join('\n')}\n`;
}

function cellText(value: string | number | undefined): string {
  return value === undefined || value === null ? '' : String(value).replace(/\s*\n\s*/g, ' ');
}

export class Output {
  constructor(private readonly io: CliIO) {}

  /** Writes one line (a newline is added) to stdout. */
  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** Writes text as is to stdout. */
  write(text: string): void {
    this.io.stdout.write(text);
  }

  /** Writes a progress or diagnostic line to stderr (keeps stdout clean for pipes). */
  info(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  json(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value ?? null, null, 2)}\n`);
  }

  table(headers: string[], rows: (string | number | undefined)[][], title?: string): void {
    this.io.stdout.write(renderTable(headers, rows, title));
  }

  vertical(pairs: [string, string | number | undefined][], title?: string): void {
    this.io.stdout.write(renderVertical(pairs, title));
  }
}
