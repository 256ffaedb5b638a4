/**
 * Key rules shared by every adapter: keys are relative '/'-separated paths with no empty, '.' or
 * '..' segments, so a key can never escape a store's root on a filesystem.
 */
import { storeErrors } from './errors.ts';
import type { ByteRange } from './object-store.ts';

/** Prefix of the files the filesystem adapter keeps beside objects (temp files, locks). */
export const RESERVED_PREFIX = '.kvfold-';

/** Throws KVF_STORE_BAD_KEY unless `key` is a safe relative key. */
export function assertKey(uri: string, key: string): void {
  if (key.length === 0) throw storeErrors.badKey(uri, key, 'it is empty');
  if (key.includes('\0') || key.includes('\\')) {
    throw storeErrors.badKey(uri, key, 'it contains a NUL or a backslash');
  }
  if (key.startsWith('/')) throw storeErrors.badKey(uri, key, 'it is absolute');
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw storeErrors.badKey(uri, key, "it has an empty, '.' or '..' segment");
    }
    if (segment.startsWith(RESERVED_PREFIX)) {
      throw storeErrors.badKey(uri, key, `segments starting with ${RESERVED_PREFIX} are reserved`);
    }
  }
}

/** Throws KVF_STORE_BAD_RANGE for a negative start or an end before the start. */
export function assertRange(uri: string, key: string, range: ByteRange | undefined): void {
  if (!range) return;
  const { start, end } = range;
  const ok =
    Number.isSafeInteger(start) && start >= 0 && (end === undefined || (Number.isSafeInteger(end) && end >= start));
  if (!ok) throw storeErrors.badRange(uri, key, start, end);
}
