/**
 * Turns an entry's bytes into text, or says why it is skipped: empty, binary, nested archive.
 * UTF-8 is tried first; bytes that are not valid UTF-8 but hold no control characters are
 * legacy 8-bit text (Latin-1 and its Windows-1252 superset, the usual encoding of old sources and
 * logs) and are decoded as Windows-1252, which maps every byte to a character.
 */
import { isBinaryFileSync } from 'isbinaryfile';
import { looksLikeArchive } from './entry-path.ts';

/** Decoded text, or the reason the entry is left out. */
export type DecodeResult =
  | { readonly ok: true; readonly text: string; readonly encoding: TextEncoding }
  | { readonly ok: false; readonly reason: string };

/** How a text entry was decoded. */
export type TextEncoding = 'utf-8' | 'windows-1252';

/** Reasons recorded in the report's `skipped` list. */
export const SkipReason = {
  empty: 'empty file',
  whitespace: 'only whitespace',
  binary: 'binary file',
  nestedArchive: 'nested archive (not unpacked; pass it as its own input)',
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const windows1252 = new TextDecoder('windows-1252');

/**
 * Whether `bytes` holds a C0 control byte that text never has (NUL, backspace, ... but not tab,
 * newlines, vertical tab, form feed or ESC), or one of the five bytes Windows-1252 leaves undefined.
 */
function hasBinaryBytes(bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0b && b !== 0x0c && b !== 0x0d && b !== 0x1b) return true;
    if (b === 0x7f || b === 0x81 || b === 0x8d || b === 0x8f || b === 0x90 || b === 0x9d) return true;
  }
  return false;
}

/**
 * Decodes `bytes` (from `path`): valid UTF-8 (a leading BOM dropped) unless it looks binary;
 * otherwise Windows-1252 when no byte is a control character; otherwise binary.
 */
export function decodeEntry(path: string, bytes: Uint8Array): DecodeResult {
  if (bytes.byteLength === 0) return { ok: false, reason: SkipReason.empty };
  if (looksLikeArchive(path)) return { ok: false, reason: SkipReason.nestedArchive };
  let text: string;
  let encoding: TextEncoding = 'utf-8';
  try {
    text = utf8.decode(bytes);
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (isBinaryFileSync(buffer, { size: buffer.byteLength })) return { ok: false, reason: SkipReason.binary };
  } catch {
    if (hasBinaryBytes(bytes)) return { ok: false, reason: SkipReason.binary };
    text = windows1252.decode(bytes);
    encoding = 'windows-1252';
  }
  if (text.trim() === '') return { ok: false, reason: SkipReason.whitespace };
  return { ok: true, text, encoding };
}
