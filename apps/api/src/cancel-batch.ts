/**
 * Cancelling a batch: flag it (workers stop active folds at their next step), then remove every
 * child that has not started, counting each as `removed` in the registry. A child a worker holds
 * cannot be removed (BullMQ refuses to remove a locked job); its worker stops it.
 */
import { DocumentJob, batchJobId, readBatchStatus } from '@kvfold/jobs';
import type { BatchRegistry, BatchState, KvfoldQueues } from '@kvfold/jobs';
import { apiErrors } from './errors.ts';

/** Children read per page from the parent's dependency set. */
const PAGE = 500;

/** Cancels `batchId`; returns the state after and how many waiting documents were removed. */
export async function cancelBatch(
  deps: { readonly registry: BatchRegistry; readonly queues: KvfoldQueues },
  batchId: string,
): Promise<{ state: BatchState; removed: number }> {
  const entry = await deps.registry.get(batchId);
  if (!entry) throw apiErrors.notFound(`no batch ${batchId}`);
  const state = await deps.registry.requestCancel(batchId);
  if (state !== 'cancelling') {
    if (state === 'cancelled') return { state, removed: 0 };
    throw apiErrors.conflict(`batch ${batchId} is ${state}; only a batch that has not started finalizing can be cancelled`);
  }

  const removed = await removeWaitingChildren(deps, batchId);
  const status = await readBatchStatus(deps, batchId);
  return { state: status?.state ?? state, removed };
}

async function removeWaitingChildren(deps: { readonly registry: BatchRegistry; readonly queues: KvfoldQueues }, batchId: string): Promise<number> {
  const parent = await deps.queues.batches.getJob(batchJobId(batchId));
  if (!parent) return 0;
  const keys: string[] = [];
  let cursor = 0;
  do {
    const page = await parent.getDependencies({ unprocessed: { cursor, count: PAGE } });
    keys.push(...(page.unprocessed ?? []));
    cursor = page.nextUnprocessedCursor ?? 0;
  } while (cursor !== 0);

  let removed = 0;
  for (const key of new Set(keys)) {
    const job = await deps.queues.documents.getJob(key.slice(key.lastIndexOf(':') + 1));
    if (!job) continue;
    try {
      await job.remove();
    } catch {
      continue; // locked by a worker: it stops the fold itself at its next step
    }
    const data = DocumentJob.safeParse(job.data);
    if (!data.success) continue;
    await deps.registry.recordDocumentDone(batchId, { docId: data.data.docId, status: 'removed', tokens: 0, bytes: data.data.bytes });
    removed += 1;
  }
  return removed;
}
