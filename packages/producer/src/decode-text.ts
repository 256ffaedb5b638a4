/**
 * Turns an entry's bytes into text, or says why it is skipped: empty, binary, nested archive,
 * or not valid UTF-8.
 */
import { isBinaryFileSync } from 'isbinaryfile';
import { looksLikeArchive } from './entry-path.ts';

/** Decoded text, or the reason the entry is left out. */
export type DecodeResult = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: string };

/** Reasons recorded in the report's `skipped` list. */
export const SkipReason = {
  empty: 'empty file',
  whitespace: 'only whitespace',
  binary: 'binary file',
  invalidUtf8: 'not valid UTF-8',
  nestedArchive: 'nested archive (not unpacked; pass it as its own input)',
} as const;

/** Decodes `bytes` (from `path`) as UTF-8 text; a leading BOM is dropped. */
export function decodeEntry(path: string, bytes: Uint8Array): DecodeResult {
  if (bytes.byteLength === 0) return { ok: false, reason: SkipReason.empty };
  if (looksLikeArchive(path)) return { ok: false, reason: SkipReason.nestedArchive };
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isBinaryFileSync(buffer, { size: buffer.byteLength })) return { ok: false, reason: SkipReason.binary };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, reason: SkipReason.invalidUtf8 };
  }
  if (text.trim() === '') return { ok: false, reason: SkipReason.whitespace };
  return { ok: true, text };
}
