/**
 * "Fold once, ask many": finding a document's kept final state by its settings.
 */
import type { KvCache, KvLayout } from '@kvfold/fold-core';
import type { ObjectStore } from '@kvfold/storage';
import type { DocLocation } from './keys.ts';
import { assertSameSettings, type LoadedCheckpoint, loadSegments, readManifest } from './load-checkpoint.ts';
import type { Fingerprints } from './manifest.ts';

/**
 * Loads the final state kept by `finalize({ keepFinal: true })` for this document and these
 * settings into an empty cache; null (and the cache left empty) when there is none, it was made
 * with other settings, or any of it is damaged (a partial state must not pass for a finished fold).
 */
export async function loadFinalState(
  store: ObjectStore,
  loc: DocLocation,
  settings: { fingerprints: Fingerprints; layout?: KvLayout },
  into: KvCache,
): Promise<LoadedCheckpoint | null> {
  const stored = await readManifest(store, loc).catch(() => null);
  if (!stored?.manifest.final) return null;
  try {
    assertSameSettings(store.uri, stored.manifest, settings);
  } catch {
    return null;
  }
  const empty = into.mark();
  const loaded = await loadSegments(store, loc, stored, into);
  if (!loaded.fellBackFrom) return loaded;
  await into.rewind(empty);
  return null;
}
