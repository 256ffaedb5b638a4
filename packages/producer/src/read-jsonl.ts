/**
 * Reads a .jsonl corpus: one document per line, `{"id"?, "path"?, "text"}`. A bad line is refused
 * with its line number and the rest goes on. Lines are streamed, never the whole file.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { ProducerErrorCode } from './errors.ts';
import type { EntrySink } from './sink.ts';

/** Checks the shape of one parsed line; returns the problems, or the fields. */
function checkLine(value: unknown): { ok: true; id?: string; path?: string; text: string } | { ok: false; problems: string } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, problems: 'not a JSON object' };
  const { id, path, text } = value as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof text !== 'string') problems.push('text: must be a string');
  if (id !== undefined && (typeof id !== 'string' || id === '')) problems.push('id: must be a non-empty string');
  if (path !== undefined && (typeof path !== 'string' || path === '')) problems.push('path: must be a non-empty string');
  if (problems.length > 0 || typeof text !== 'string') return { ok: false, problems: problems.join('; ') };
  return { ok: true, text, ...(typeof id === 'string' ? { id } : {}), ...(typeof path === 'string' ? { path } : {}) };
}

/** A text read from one line, named by its path, id, or `<file>#L<n>`. */
export interface JsonlText {
  readonly path: string;
  readonly text: string;
}

/** Yields the texts of `file`; blank lines are passed over. */
export async function* readJsonl(file: string, sink: EntrySink): AsyncGenerator<JsonlText> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber += 1;
    if (line.trim() === '') continue;
    const where = `line ${lineNumber}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      sink.refuse(where, ProducerErrorCode.JsonlBadLine, `invalid JSON: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const checked = checkLine(value);
    if (!checked.ok) {
      sink.refuse(where, ProducerErrorCode.JsonlBadLine, `expected {"id"?, "path"?, "text"}: ${checked.problems}`);
      continue;
    }
    const { id, path, text } = checked;
    yield { path: path ?? id ?? `${basename(file)}#L${lineNumber}`, text };
  }
}
