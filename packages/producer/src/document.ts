/**
 * A document: the UTF-8 text one fold reads, identified by the sha256 of its bytes.
 */
import { sha256Hex } from '@kvfold/contract';

/** One document ready to shard. */
export interface Document {
  /** sha256 of `bytes`. */
  readonly docId: string;
  /** What reports call it: a file's path, a group's directory (`repo/src/`), a jsonl line's id. */
  readonly name: string;
  /** Source paths, in the order the document holds them: one file, a group's files, a jsonl line's path/id. */
  readonly paths: readonly string[];
  /** The input it came from, as given. */
  readonly input: string;
  /** The text (decoded from `bytes` when first read). */
  readonly text: string;
  /** UTF-8 encoding of `text`. */
  readonly bytes: Uint8Array;
}

/** A document of UTF-8 `bytes`; its text is decoded only if someone reads it. */
export function documentOf(input: string, name: string, paths: readonly string[], bytes: Uint8Array): Document {
  let text: string | undefined;
  return {
    docId: sha256Hex(bytes),
    name,
    paths: [...paths],
    input,
    bytes,
    get text() {
      text ??= Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
      return text;
    },
  };
}

/** Builds a document from its text, hashing its UTF-8 bytes; named after its first path unless told. */
export function makeDocument(input: string, paths: readonly string[], text: string, name: string = paths[0] ?? input): Document {
  return documentOf(input, name, paths, new Uint8Array(Buffer.from(text, 'utf8')));
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
