/**
 * `kvfold store gc`: the checkpoint garbage of a store swept (@kvfold/checkpoint's
 * sweepCheckpoints): segments no manifest lists, folders without a manifest, and the checkpoints
 * of documents that have a completed result, all older than a grace age. A document's checkpoint
 * folder is `<docId>-<settings hash>` (checkpointKey); its results are
 * `batches/<batchId>/results/<docId>.json`, found by one listing of `batches/`.
 */
import { type SweepReport, sweepCheckpoints } from '@kvfold/checkpoint';
import { DocumentResult } from '@kvfold/contract';
import type { ObjectStore } from '@kvfold/storage';
import { DEFAULT_CHECKPOINT_PREFIX } from './checkpoints.ts';

/** What `kvfold store gc` leaves alone by default: anything written within the last hour. */
export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;

/** `batches/<batchId>/results/<docId>.json` */
const RESULT_KEY = /^batches\/[^/]+\/results\/([^/]+)\.json$/;
/** `<docId>-<16 hex>`, as checkpointKey names a document's checkpoint. */
const CHECKPOINT_DOC_KEY = /^(.+)-[0-9a-f]{16}$/;

export async function sweepStore(store: ObjectStore, options: { graceMs?: number; dryRun?: boolean; now?: Date } = {}): Promise<SweepReport> {
  const results = new Map<string, string[]>();
  for await (const o of store.list('batches/')) {
    const docId = RESULT_KEY.exec(o.key)?.[1];
    if (docId) results.set(docId, [...(results.get(docId) ?? []), o.key]);
  }
  const completed = async (docKey: string) => {
    const docId = CHECKPOINT_DOC_KEY.exec(docKey)?.[1];
    for (const key of (docId && results.get(docId)) || []) {
      const parsed = DocumentResult.safeParse(JSON.parse(Buffer.from(await store.getBytes(key)).toString('utf8')));
      if (parsed.success && parsed.data.status === 'completed') return true;
    }
    return false;
  };
  return sweepCheckpoints(store, {
    prefix: DEFAULT_CHECKPOINT_PREFIX,
    graceMs: options.graceMs ?? DEFAULT_GC_GRACE_MS,
    completed,
    ...(options.dryRun ? { dryRun: true } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}
