/**
 * enqueueBatch(): one BullMQ flow per batch — a parent job in the batches queue and one child per
 * distinct document — with deterministic ids, so enqueueing the same batch again adds nothing.
 */
import {
  BatchSpec,
  DocumentJob,
  JOB_NAMES,
  QUEUE_NAMES,
  batchJobId,
  deriveBatchId,
  documentJobId,
  foldSettingsOf,
  parseOrThrow,
  priorityForLength,
} from '@kvfold/jobs';
import type { BatchJob, BatchSpecInput, CorpusIndex, KvfoldQueues } from '@kvfold/jobs';
import type { FlowJob, FlowJobNode } from 'bullmq';
import { ProducerError, ProducerErrorCode } from './errors.ts';
import { bytesThatFit, foldOrder } from './token-budget.ts';

/** Retry policy of document jobs. */
export interface EnqueueOptions {
  /** Attempts per document before it counts as failed (default 3). */
  readonly attempts?: number;
  /** First retry delay; doubles each attempt (default 10 s). */
  readonly backoffMs?: number;
  /**
   * Seconds a completed document job stays in Redis (for Bull Board and operators) before BullMQ
   * removes it (default a day). Its result lives in the store; the batch's counts live on the parent.
   */
  readonly keepCompletedS?: number;
  /** Seconds a failed document job stays in Redis (default a week); the parent keeps its reason. */
  readonly keepFailedS?: number;
}

/** What was enqueued. */
export interface EnqueueResult {
  readonly batchId: string;
  readonly parentJobId: string;
  /** Document job ids in fold order (see foldOrder): longest first, those that may not fit last. */
  readonly jobIds: readonly string[];
  /** Jobs created by this call (0 when the batch was already enqueued). */
  readonly added: number;
}

const DEFAULT_ATTEMPTS = 3;
const DEFAULT_BACKOFF_MS = 10_000;
const DEFAULT_KEEP_COMPLETED_S = 24 * 3600;
const DEFAULT_KEEP_FAILED_S = 7 * 24 * 3600;

/**
 * Enqueues `spec` over `corpora`. Documents are deduplicated across corpora by content id and given
 * priorities so the longest start first, except those that may not fit the token limit, which go
 * last. A document that fails for good does not fail the batch: its children use
 * `ignoreDependencyOnFailure`, so the parent still runs and sees the failure.
 * Since a flow is added atomically, an existing parent means the whole batch exists; then nothing
 * is added (re-adding could recreate children that were already folded and removed).
 */
export async function enqueueBatch(
  queues: Pick<KvfoldQueues, 'flow' | 'batches'>,
  specInput: BatchSpecInput | BatchSpec,
  corpora: CorpusIndex | readonly CorpusIndex[],
  options: EnqueueOptions = {},
): Promise<EnqueueResult> {
  const spec = parseOrThrow(BatchSpec, specInput, 'batch spec');
  const indexes: readonly CorpusIndex[] = Array.isArray(corpora) ? corpora : [corpora as CorpusIndex];
  const batchId = deriveBatchId(
    indexes.map((c) => c.corpusId),
    spec,
  );
  const fold = foldSettingsOf(spec);
  const documents = new Map<string, DocumentJob>();
  for (const corpus of indexes) {
    for (const doc of corpus.documents) {
      if (documents.has(doc.docId)) continue;
      documents.set(
        doc.docId,
        DocumentJob.parse({ batchId, docId: doc.docId, corpusId: corpus.corpusId, shard: doc.shard, paths: doc.paths, bytes: doc.bytes, fold }),
      );
    }
  }
  if (documents.size === 0) {
    throw new ProducerError(ProducerErrorCode.EnqueueEmpty, `batch ${batchId} has no documents (corpora: ${spec.corpus.join(', ')})`);
  }
  const ordered = foldOrder([...documents.values()], fold.maxTokensPerDocument);
  const jobIds = ordered.map((d) => documentJobId(batchId, d.docId));
  const parentJobId = batchJobId(batchId);

  if (await queues.batches.getJob(parentJobId)) return { batchId, parentJobId, jobIds, added: 0 };

  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const children: FlowJobNode[] = ordered.map((data, i) => ({
    name: JOB_NAMES.foldDocument,
    queueName: QUEUE_NAMES.documents,
    data,
    opts: {
      jobId: jobIds[i] as string,
      // Documents that may be over the token limit take the lowest priority (see foldOrder).
      priority: data.bytes > bytesThatFit(fold.maxTokensPerDocument) ? priorityForLength(0) : priorityForLength(data.bytes),
      ignoreDependencyOnFailure: true,
      attempts,
      backoff: { type: 'exponential', delay: backoffMs },
      removeOnComplete: { age: options.keepCompletedS ?? DEFAULT_KEEP_COMPLETED_S },
      removeOnFail: { age: options.keepFailedS ?? DEFAULT_KEEP_FAILED_S },
    },
  }));
  const parentData: BatchJob = {
    batchId,
    corpusIds: indexes.map((c) => c.corpusId),
    corpus: spec.corpus,
    documents: ordered.length,
    fold,
    createdAt: new Date().toISOString(),
  };
  const flow: FlowJob = {
    name: JOB_NAMES.finalizeBatch,
    queueName: QUEUE_NAMES.batches,
    data: parentData,
    opts: { jobId: parentJobId },
    children,
  };
  await queues.flow.add(flow);
  return { batchId, parentJobId, jobIds, added: children.length + 1 };
}
