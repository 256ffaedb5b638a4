/**
 * Enqueueing a batch again from what the store holds: `retry` (the documents of an ended batch
 * that did not complete: failed, cancelled, or without a result) and `recover` (after Redis lost
 * its queues: every stored batch's entry is rebuilt and the documents without a result go back
 * in). Workers resume each document from its checkpoint, and a document whose completed result is
 * stored is never enqueued again (and never folded again if it is delivered anyway).
 *
 * A batch is enqueued again as a fresh flow under the same deterministic ids: the old parent job,
 * if Redis still has it, is removed with its finished children first.
 */
import { BatchSpec, batchCancelKey, batchGateJobId, batchJobId, batchResultsKey, batchSummaryKey, foldSettingsOf } from '@kvfold/contract';
import { JOB_NAMES, readStoredBatch, snapshotOf, storedBatchIds } from '@kvfold/jobs';
import type { BatchJob, BatchState, CorpusIndex } from '@kvfold/contract';
import type { BatchRegistry, KvfoldQueues, StoredBatch } from '@kvfold/jobs';
import type { ObjectStore } from '@kvfold/storage';
import type { Job } from 'bullmq';
import { type EnqueueOptions, enqueueBatch } from './enqueue.ts';
import { planBatch } from './plan-batch.ts';
import { ProducerError, ProducerErrorCode } from './errors.ts';
import { readCorpusIndex } from './read-corpus.ts';

/** What requeueing needs. */
export interface RequeueDeps {
  readonly store: ObjectStore;
  readonly queues: Pick<KvfoldQueues, 'flow' | 'batches' | 'documents'>;
  readonly registry: BatchRegistry;
  readonly enqueue?: EnqueueOptions;
  /**
   * How old (ms) an enqueue gate must be before `recover` takes its batch for an enqueue that was
   * cut off and attaches the rest (default 5 minutes; an enqueue attaches 500 documents a call).
   */
  readonly staleGateMs?: number;
}

/** Age after which a gate still holding its parent is an enqueue that was cut off. */
const DEFAULT_STALE_GATE_MS = 5 * 60 * 1000;

/** What one batch got. */
export interface RequeuedBatch {
  readonly id: string;
  readonly state: BatchState;
  /** Documents enqueued again. */
  readonly requeued: number;
}

/**
 * Retries an ended batch: every document without a completed result (failed, cancelled, never
 * folded) is enqueued again, the others are kept, and the batch is `queued` until it finalizes
 * again. Throws KVF_BATCH_NOT_ENDED while the batch is still running (retry it once it ended, or
 * cancel it first) and KVF_BATCH_UNKNOWN when the store has no such batch.
 */
export async function retryBatch(deps: RequeueDeps, batchId: string): Promise<RequeuedBatch> {
  const stored = await readStoredBatch(deps.store, batchId, { outcomes: true });
  if (!stored) throw new ProducerError(ProducerErrorCode.BatchUnknown, `no batch ${batchId} in ${deps.store.uri} (check the id)`);
  const parent = await deps.queues.batches.getJob(batchJobId(batchId));
  const parentState = parent ? await parent.getState() : 'missing';
  const entry = await deps.registry.get(batchId);
  const running = parentState !== 'missing' && parentState !== 'completed' && parentState !== 'failed';
  if (running && !(entry && (entry.state === 'cancelled' || entry.state === 'failed'))) {
    throw new ProducerError(ProducerErrorCode.BatchNotEnded, `batch ${batchId} is ${entry?.state ?? parentState}; retry it once it has ended (or cancel it first)`);
  }
  const redo = [...stored.documents.keys()].filter((docId) => stored.outcomes.get(docId)?.status !== 'completed');
  return requeue(deps, stored, redo);
}

/** What `recover` did. */
export interface RecoverReport {
  /** Batches whose registry entry was rebuilt from the store. */
  readonly rebuilt: number;
  /** Batches enqueued again (their queue state was lost). */
  readonly requeued: readonly RequeuedBatch[];
}

/**
 * Rebuilds the registry entry of every batch in the store that Redis does not know, and enqueues
 * again each unfinished batch whose parent job Redis lost: its documents without a result (none
 * for a cancelled batch, which only finalizes). A batch whose enqueue was cut off (its gate older
 * than `staleGateMs`) gets the rest of its documents attached. Other batches Redis still queues
 * are left alone, so running it twice, or on a healthy system, changes nothing. O(stored batches +
 * their results).
 */
export async function recoverBatches(deps: RequeueDeps): Promise<RecoverReport> {
  let rebuilt = 0;
  const requeued: RequeuedBatch[] = [];
  for await (const batchId of storedBatchIds(deps.store)) {
    const parent = await deps.queues.batches.getJob(batchJobId(batchId));
    if (parent) {
      const resumed = await resumeCutOffEnqueue(deps, batchId, parent);
      if (resumed) requeued.push(resumed);
      continue;
    }
    const stored = await readStoredBatch(deps.store, batchId);
    if (!stored) continue;
    if (stored.finalized) {
      if (await deps.registry.restore(snapshotOf(stored), { onlyIfAbsent: true })) rebuilt += 1;
      continue;
    }
    rebuilt += 1;
    const redo = stored.cancelledAt ? [] : [...stored.documents.keys()].filter((docId) => !stored.outcomes.has(docId));
    requeued.push(await requeue(deps, stored, redo, { keepCancel: true }));
  }
  return { rebuilt, requeued };
}

/**
 * A batch whose enqueue was cut off between chunks (its process died): the parent is still held by
 * its gate, so it would never finalize (the gate waits 30 days, after which the documents never
 * attached end as failed stubs). Enqueueing it again from its stored record attaches the rest and
 * removes the gate; documents already attached keep their jobs (the same ids). Safe beside an
 * enqueue still running: both attach the same jobs, and the one that removes the gate last wins.
 */
async function resumeCutOffEnqueue(deps: RequeueDeps, batchId: string, parent: Job): Promise<RequeuedBatch | undefined> {
  const gate = await deps.queues.batches.getJob(batchGateJobId(batchId));
  if (!gate || Date.now() - gate.timestamp < (deps.staleGateMs ?? DEFAULT_STALE_GATE_MS)) return undefined;
  const stored = await readStoredBatch(deps.store, batchId);
  if (!stored || stored.cancelledAt) return undefined;
  const attached = async () => Object.values(await parent.getDependenciesCount()).reduce((a, b) => a + b, 0);
  const before = await attached();
  const indexes = await Promise.all(stored.record.corpus.map((key) => readCorpusIndex(deps.store, key)));
  await enqueueBatch(deps.queues, planBatch(stored.record.spec, indexes), deps.enqueue);
  // Children now, less those before, plus the gate that went.
  const requeued = (await attached()) - before + 1;
  return { id: batchId, state: (await deps.registry.get(batchId))?.state ?? 'queued', requeued };
}

/**
 * Enqueues `docIds` of a stored batch as a fresh flow; with none, only the parent (which then
 * finalizes at once). The registry entry is rewritten from the store without those documents.
 */
async function requeue(deps: RequeueDeps, stored: StoredBatch, docIds: readonly string[], options: { keepCancel?: boolean } = {}): Promise<RequeuedBatch> {
  const { record } = stored;
  const redo = new Set(docIds);
  const old = await deps.queues.batches.getJob(batchJobId(record.id));
  if (old) {
    await old.remove().catch((err: unknown) => {
      throw new ProducerError(ProducerErrorCode.BatchNotEnded, `batch ${record.id} still has a document being folded; retry it once it has ended (${(err as Error).message})`);
    });
  }
  const cancelled = options.keepCancel === true && stored.cancelledAt !== undefined;
  if (!cancelled) await deps.store.delete(batchCancelKey(record.id));
  await deps.store.delete(batchResultsKey(record.id));
  await deps.store.delete(batchSummaryKey(record.id));
  const outcomes = new Map([...stored.outcomes].filter(([docId]) => !redo.has(docId)));
  const state: BatchState = cancelled ? 'cancelling' : 'queued';
  const { cancelledAt, summary: _finalCounts, ...rest } = stored;
  await deps.registry.restore(snapshotOf({ ...rest, outcomes, finalized: false, ...(cancelled && cancelledAt ? { cancelledAt } : {}) }, state));

  const spec = BatchSpec.parse(record.spec);
  if (redo.size === 0) {
    const parent: BatchJob = {
      batchId: record.id,
      corpusIds: record.corpusIds,
      corpus: record.corpus,
      documents: 0,
      fold: foldSettingsOf(spec),
      createdAt: new Date().toISOString(),
    };
    await deps.queues.batches.add(JOB_NAMES.finalizeBatch, parent, { jobId: batchJobId(record.id) });
    return { id: record.id, state, requeued: 0 };
  }
  const indexes: CorpusIndex[] = [];
  for (const key of record.corpus) {
    const index = await readCorpusIndex(deps.store, key);
    indexes.push({ ...index, documents: index.documents.filter((d) => redo.has(d.docId)) });
  }
  const enqueued = await enqueueBatch(deps.queues, planBatch(spec, indexes), deps.enqueue);
  if (enqueued.batchId !== record.id) {
    throw new ProducerError(ProducerErrorCode.BatchUnknown, `batch ${record.id}: its stored record derives id ${enqueued.batchId}; the record was altered`);
  }
  return { id: record.id, state, requeued: enqueued.jobIds.length };
}
