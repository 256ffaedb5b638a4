/**
 * A document: the UTF-8 text one fold reads, identified by the sha256 of its bytes.
 */
import { sha256Hex } from '@kvfold/jobs';

/** One document ready to shard. */
export interface Document {
  /** sha256 of `bytes`. */
  readonly docId: string;
  /** Source paths: one file, the files of a group, or a jsonl line's path/id. */
  readonly paths: readonly string[];
  /** The input it came from, as given. */
  readonly input: string;
  readonly text: string;
  /** UTF-8 encoding of `text`. */
  readonly bytes: Uint8Array;
}

/** Builds a document, hashing its UTF-8 bytes. */
export function makeDocument(input: string, paths: readonly string[], text: string): Document {
  const bytes = new Uint8Array(Buffer.from(text, 'utf8'));
  return { docId: sha256Hex(bytes), paths: [...paths], input, text, bytes };
}

/** Header written before each file when files are grouped into one document. */
export function fileHeader(path: string): string {
  return `===== ${path} =====\n`;
}

/**
 * Packs files into one document text: each preceded by its header, in sorted path order,
 * each ending with a newline.
 */
export function packFiles(files: ReadonlyArray<{ readonly path: string; readonly text: string }>): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return sorted.map((f) => `${fileHeader(f.path)}${f.text.endsWith('\n') ? f.text : `${f.text}\n`}`).join('');
}
