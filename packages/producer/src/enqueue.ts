/**
 * enqueueBatch(): one BullMQ parent job per batch in the batches queue and one child per distinct
 * document, with deterministic ids, so enqueueing the same batch again adds nothing.
 *
 * The children are added in chunks (ENQUEUE_CHUNK at a time), so the memory of an enqueue stays
 * bounded whatever the batch size (one BullMQ flow of every child holds ~19 KB a job until Redis
 * answers). The parent is created first, in one flow with the first chunk and a gate: a child that
 * never runs (delayed far out) and keeps the parent waiting while later chunks are attached. Once
 * every document is attached the gate is removed, which releases the parent to finalize when its
 * last document is done. A parent whose gate is still there is a batch still being enqueued (or
 * whose enqueue was cut off): enqueueing it again attaches what is missing and removes the gate.
 */
import { type DocumentJob, batchGateJobId, batchJobId, documentJobId, foldSettingsOf, priorityForLength } from '@kvfold/contract';
import { JOB_NAMES, QUEUE_NAMES } from '@kvfold/jobs';
import type { BatchJob } from '@kvfold/contract';
import type { KvfoldQueues } from '@kvfold/jobs';
import type { FlowJob, FlowJobNode, JobsOptions } from 'bullmq';
import type { BatchPlan } from './plan-batch.ts';
import { bytesThatFit } from './token-budget.ts';

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
  /** Documents attached per Redis call (default ENQUEUE_CHUNK). */
  readonly chunk?: number;
}

/** What was enqueued. */
export interface EnqueueResult {
  readonly batchId: string;
  readonly parentJobId: string;
  /** Document job ids in fold order (see foldOrder): longest first, those that may not fit last. */
  readonly jobIds: readonly string[];
  /** Jobs created or attached again by this call (0 when the whole batch was already enqueued). */
  readonly added: number;
}

const DEFAULT_ATTEMPTS = 3;
const DEFAULT_BACKOFF_MS = 10_000;
const DEFAULT_KEEP_COMPLETED_S = 24 * 3600;
const DEFAULT_KEEP_FAILED_S = 7 * 24 * 3600;
/** Documents attached to a batch per Redis call. */
export const ENQUEUE_CHUNK = 500;
/** How long the gate waits if nothing removes it: an enqueue cut off and never resumed. */
const GATE_DELAY_MS = 30 * 24 * 3600 * 1000;

/**
 * Enqueues a batch's plan: the jobs planBatch() made, given priorities in its fold order
 * (the longest start first, those that may not fit the token limit last). A document that fails for good does not fail the batch: its children use
 * `ignoreDependencyOnFailure`, so the parent still runs and sees the failure.
 * An existing parent without its gate means the whole batch was attached; then nothing is added
 * (re-adding could recreate children that were already folded and removed).
 */
export async function enqueueBatch(queues: Pick<KvfoldQueues, 'flow' | 'batches' | 'documents'>, plan: BatchPlan, options: EnqueueOptions = {}): Promise<EnqueueResult> {
  const { batchId, spec, jobs: ordered } = plan;
  const fold = foldSettingsOf(spec);
  const jobIds = ordered.map((d) => documentJobId(batchId, d.docId));
  const parentJobId = batchJobId(batchId);

  const attempts = options.attempts ?? DEFAULT_ATTEMPTS;
  const backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const chunk = Math.max(1, options.chunk ?? ENQUEUE_CHUNK);
  const childOpts = (data: DocumentJob, i: number): JobsOptions => ({
    jobId: jobIds[i] as string,
    // Documents that may be over the token limit take the lowest priority (see foldOrder).
    priority: data.bytes > bytesThatFit(fold.maxTokensPerDocument) ? priorityForLength(0) : priorityForLength(data.bytes),
    ignoreDependencyOnFailure: true,
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: { age: options.keepCompletedS ?? DEFAULT_KEEP_COMPLETED_S },
    removeOnFail: { age: options.keepFailedS ?? DEFAULT_KEEP_FAILED_S },
  });

  let first = 0;
  if (await queues.batches.getJob(parentJobId)) {
    const gate = await queues.batches.getJob(batchGateJobId(batchId));
    if (!gate) return { batchId, parentJobId, jobIds, added: 0 };
    // An enqueue that was cut off: attach every document again (those attached already are left
    // as they are: the same ids), then release the parent.
  } else {
    const firstChunk: FlowJobNode[] = ordered.slice(0, chunk).map((data, i) => ({ name: JOB_NAMES.foldDocument, queueName: QUEUE_NAMES.documents, data, opts: childOpts(data, i) }));
    const parentData: BatchJob = {
      batchId,
      corpusIds: [...plan.corpusIds],
      corpus: spec.corpus,
      documents: ordered.length,
      fold,
      createdAt: new Date().toISOString(),
    };
    const gated = ordered.length > chunk;
    const gate: FlowJobNode = { name: JOB_NAMES.enqueueGate, queueName: QUEUE_NAMES.batches, data: { batchId }, opts: { jobId: batchGateJobId(batchId), delay: GATE_DELAY_MS } };
    const flow: FlowJob = {
      name: JOB_NAMES.finalizeBatch,
      queueName: QUEUE_NAMES.batches,
      data: parentData,
      opts: { jobId: parentJobId },
      children: gated ? [gate, ...firstChunk] : firstChunk,
    };
    await queues.flow.add(flow);
    if (!gated) return { batchId, parentJobId, jobIds, added: firstChunk.length + 1 };
    first = chunk;
  }
  const parent = { id: parentJobId, queue: queues.batches.qualifiedName };
  for (let from = first; from < ordered.length; from += chunk) {
    // Cancel removes the gate with the waiting documents: attach no more.
    if (from > first && !(await queues.batches.getJob(batchGateJobId(batchId)))) break;
    const jobs = ordered.slice(from, from + chunk).map((data, i) => ({ name: JOB_NAMES.foldDocument, data, opts: { ...childOpts(data, from + i), parent } }));
    await queues.documents.addBulk(jobs);
  }
  // Removing the gate is what lets the parent finalize; a cancel may have removed it already.
  await (await queues.batches.getJob(batchGateJobId(batchId)))?.remove();
  return { batchId, parentJobId, jobIds, added: first === 0 ? ordered.length : ordered.length + 1 };
}
