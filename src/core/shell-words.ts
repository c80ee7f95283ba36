/**
 * One command-line splitter for the CLI's command flags and the API's legacy exec `cmd` string:
 * quotes and backslashes as a POSIX shell reads them, no expansion.
 * @module
 */
import { HangarError } from './errors.js';

/** Splits a command line like a POSIX shell would (quotes and backslashes; no expansion). */
export function shellWords(field: string, text: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) current += text[++i];
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      current += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote) throw new HangarError('invalid_argument', `${field}: unterminated ${quote} quote in '${text}'`);
  if (inWord) words.push(current);
  return words;
}
