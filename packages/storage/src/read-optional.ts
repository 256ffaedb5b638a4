/**
 * readOptional(): a whole object, or null when it is absent — the read of markers and records that
 * may not exist yet, without each caller catching ObjectNotFoundError.
 */
import { ObjectNotFoundError } from './errors.ts';
import type { ObjectStore } from './object-store.ts';

/** The object's bytes, or null when the store has no such key; other errors are thrown. */
export async function readOptional(store: ObjectStore, key: string): Promise<Uint8Array | null> {
  try {
    return await store.getBytes(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    throw err;
  }
}
