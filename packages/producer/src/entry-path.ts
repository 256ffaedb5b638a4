/**
 * Validation of paths found inside archives: an entry must stay inside the archive's root.
 */
import { ProducerErrorCode } from './errors.ts';

/** A path accepted (normalised, '/'-separated, relative) or refused with its reason. */
export type EntryPathCheck =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly code: ProducerErrorCode; readonly reason: string };

/**
 * Checks an archive entry name. Backslashes count as separators (Windows-made archives), `.` and
 * empty segments are dropped. Refused: NUL bytes, absolute paths, drive letters and any `..`
 * segment (even one that would stay inside: nothing legitimate needs it).
 * Returns `{ok: true, path: ''}` for the root itself (e.g. `./`).
 */
export function checkEntryPath(name: string): EntryPathCheck {
  const escaping = (reason: string): EntryPathCheck => ({ ok: false, code: ProducerErrorCode.EscapingEntry, reason });
  if (name.includes('\0')) return escaping('entry name contains a NUL byte');
  const slashed = name.replace(/\\/g, '/');
  if (slashed.startsWith('/')) return escaping('absolute path escapes the archive root');
  if (/^[A-Za-z]:/.test(slashed)) return escaping('drive-letter path escapes the archive root');
  const segments = slashed.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return escaping("'..' segment escapes the archive root");
  return { ok: true, path: segments.join('/') };
}

/** File name endings of archives; nested archives are not unpacked (see `decodeEntry`). */
const ARCHIVE_SUFFIXES = ['.zip', '.tar', '.tar.gz', '.tgz', '.gz', '.bz2', '.xz', '.zst', '.7z', '.rar', '.jar', '.war'];

/** Whether `path` names an archive by its extension. */
export function looksLikeArchive(path: string): boolean {
  const lower = path.toLowerCase();
  return ARCHIVE_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}
