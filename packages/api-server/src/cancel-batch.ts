/**
 * Cancelling a batch in a fixed number of Redis round trips, whatever its size: flag it (workers
 * skip its documents before folding and stop active folds at their next step), mark it cancelled
 * in the store, then remove every child that has not started in one server-side script (BullMQ's
 * removeUnprocessedChildren; a child a worker holds is locked and left to its worker). The count
 * removed is the parent's unprocessed dependencies before minus after (two SCARDs).
 */
import { batchGateJobId, batchJobId } from '@kvfold/contract';
import { loadBatchEntry, readBatchStatus, writeCancelMarker } from '@kvfold/jobs';
import type { BatchRegistry, KvfoldQueues } from '@kvfold/jobs';
import type { BatchState } from '@kvfold/contract';
import type { ObjectStore } from '@kvfold/storage';
import { apiErrors } from './errors.ts';

/** Cancels `batchId`; returns the state after and how many waiting documents were removed. */
export async function cancelBatch(
  deps: { readonly registry: BatchRegistry; readonly store: ObjectStore; readonly queues: KvfoldQueues },
  batchId: string,
): Promise<{ state: BatchState; removed: number }> {
  const entry = await loadBatchEntry(deps, batchId);
  if (!entry) throw apiErrors.notFound(`no batch ${batchId}`);
  const state = await deps.registry.requestCancel(batchId);
  if (state !== 'cancelling') {
    if (state === 'cancelled') return { state, removed: 0 };
    throw apiErrors.conflict(`batch ${batchId} is ${state}; only a batch that has not started finalizing can be cancelled`);
  }
  await writeCancelMarker(deps.store, batchId, new Date().toISOString());

  const removed = await removeWaitingChildren(deps.queues, batchId);
  const status = await readBatchStatus(deps, batchId);
  return { state: status?.state ?? state, removed };
}

async function removeWaitingChildren(queues: KvfoldQueues, batchId: string): Promise<number> {
  const parent = await queues.batches.getJob(batchJobId(batchId));
  if (!parent) return 0;
  const unprocessed = async () => (await parent.getDependenciesCount({ unprocessed: true })).unprocessed ?? 0;
  // A batch still being enqueued has its gate among them, which is no document.
  const gate = (await queues.batches.getJob(batchGateJobId(batchId))) ? 1 : 0;
  const before = await unprocessed();
  await parent.removeUnprocessedChildren();
  return before - (await unprocessed()) - gate;
}
