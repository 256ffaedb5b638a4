/**
 * The ingest report: what was taken, what was skipped (harmless: binary, empty, ignored) and what
 * was refused (hostile or over a cap), each with the input and the entry it concerns.
 */
import type { ProducerErrorCode } from './errors.ts';

/** A file left out for an ordinary reason. */
export interface SkippedEntry {
  readonly input: string;
  readonly path: string;
  readonly reason: string;
}

/** An entry refused for safety or a cap; `code` is from the producer's catalogue. */
export interface RefusedEntry {
  readonly input: string;
  readonly entry: string;
  readonly reason: string;
  readonly code: ProducerErrorCode;
}

/** Counts and lists of one ingest run. Complete once the documents have been iterated. */
export interface IngestReport {
  readonly inputs: string[];
  /** Files (or jsonl lines) decoded into text. */
  files: number;
  /** Documents produced (after grouping). */
  documents: number;
  /** UTF-8 bytes of all documents. */
  bytes: number;
  /** Files left out by .gitignore rules or because they sit in `.git/`. */
  ignored: number;
  readonly skipped: SkippedEntry[];
  readonly refused: RefusedEntry[];
}

/** An empty report for `inputs`. */
export function newReport(inputs: readonly string[]): IngestReport {
  return { inputs: [...inputs], files: 0, documents: 0, bytes: 0, ignored: 0, skipped: [], refused: [] };
}
