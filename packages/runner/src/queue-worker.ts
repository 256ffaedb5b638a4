/**
 * The queue worker: BullMQ workers that fold document jobs with processDocument() and finalize
 * batches when their last document is done. Used by apps/worker and `kvfold worker`.
 *
 * Facts that shape it (DESIGN.md section 7):
 * - Inference runs in a worker thread (packages/onnx), so this event loop stays free: BullMQ renews
 *   job locks, the health endpoint answers and signals are handled while a step runs.
 * - BullMQ delivers at least once: deterministic job ids, immutable segments and a fenced manifest
 *   make a second delivery harmless; a retried job resumes from its checkpoint on any worker.
 * - Preemption: `stop()` asks every fold to end after its current step; each commits a checkpoint
 *   and hands its job back to the queue without consuming an attempt (moveToWait + WaitingError).
 */
import { hostname } from 'node:os';
import { CheckpointFencedError } from '@kvfold/checkpoint';
import { BatchCancelledError, type BatchRegistry, type FoldMetrics, type FoldProgress, JOB_NAMES, JobsError, JobsErrorCode, loadBatchEntry, QUEUE_NAMES, redisOptionsFromUrl } from '@kvfold/jobs';
import { BatchJob, DocumentJob, type DocumentOutcome, type DocumentResult, documentResultKey } from '@kvfold/contract';
import { readCorpusIndex } from '@kvfold/producer';
import type { ObjectStore } from '@kvfold/storage';
import { ErrorCode, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { finalizeBatch } from './finalize-batch.ts';
import { CacheAdmission } from './cache-admission.ts';
import type { ModelCache } from './model-cache.ts';
import { processDocument } from './process-document.ts';
import { storedResult } from './stored-result.ts';

export interface QueueWorkerDeps {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly store: ObjectStore;
  readonly models: ModelCache;
  readonly registry: BatchRegistry;
  readonly metrics: FoldMetrics;
  readonly log: Logger;
  /** Documents folded at once by this process (one per device). */
  readonly concurrency: number;
  /** Caps each batch's maxBatchSize (KVFOLD_MAX_BATCH_SIZE). */
  readonly maxBatchSize?: number;
  /** BullMQ lock duration (ms); it is renewed at half of it while a fold runs. */
  readonly lockDurationMs?: number;
  /** How often (ms) this worker looks for jobs whose lock expired (a crashed or paused worker's) and requeues them. */
  readonly stalledIntervalMs?: number;
}

export interface QueueWorker {
  /** Resolves once both workers are connected and taking jobs. */
  ready(): Promise<void>;
  /** True while folding or idle and connected. */
  healthy(): boolean;
  /** Stops taking jobs, stops active folds after their current step (checkpointed, handed back), and closes. */
  stop(): Promise<void>;
}

/** Lock duration: BullMQ's default; renewal keeps it alive through long steps since inference is off-thread. */
const DEFAULT_LOCK_MS = 30_000;
/** Stalled-job check interval: BullMQ's default, so a crashed worker's job is requeued within about a minute. */
const DEFAULT_STALLED_INTERVAL_MS = 30_000;
/**
 * Stalls a document job survives: a stall is its worker killed or paused past the lock, not a fault
 * of the document, and the checkpoint keeps the work, so it must not fail the job (BullMQ's default of
 * 1 fails it on the second stall, whatever `attempts` says). Bounded, so a document that kills every
 * worker that folds it (a native crash, the kernel's OOM killer) still ends, as failed.
 */
export const MAX_STALLED_COUNT = 10;

export function startQueueWorker(deps: QueueWorkerDeps): QueueWorker {
  const { store, registry, metrics, log } = deps;
  const workerName = `${hostname()}:${process.pid}`;
  let stopping = false;
  // The documents folded at once wait for room for their caches together.
  const admission = new CacheAdmission();
  const connection = { ...redisOptionsFromUrl(deps.redisUrl), maxRetriesPerRequest: null };
  /**
   * Counts a document's outcome; when Redis lost the batch's entry (a restart without persistence)
   * it is rebuilt from the store first, which already holds this document's result.
   */
  const recordDone = async (batchId: string, outcome: DocumentOutcome): Promise<void> => {
    try {
      await registry.recordDocumentDone(batchId, outcome);
    } catch (err) {
      if (!(err instanceof JobsError && err.code === JobsErrorCode.BatchNotFound)) throw err;
      if (!(await loadBatchEntry({ registry, store }, batchId))) throw err;
      await registry.recordDocumentDone(batchId, outcome);
    }
  };
  const locks = { lockDuration: deps.lockDurationMs ?? DEFAULT_LOCK_MS, stalledInterval: deps.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS };

  const documents = new Worker<DocumentJob, DocumentJobReturn>(
    QUEUE_NAMES.documents,
    async (job, token) => {
      const data = DocumentJob.parse(job.data);
      const attempt = job.attemptsMade + 1;
      const jlog = log.child({ batchId: data.batchId, docId: data.docId, jobId: job.id, attempt });
      if (await registry.isCancelled(data.batchId)) {
        await recordDone(data.batchId, { docId: data.docId, status: 'cancelled', tokens: 0, bytes: data.bytes });
        throw new BatchCancelledError(data.batchId, data.docId);
      }
      // A result already stored (a delivery after a finished attempt whose lock had lapsed) is the
      // answer: BullMQ delivers at least once, and a document is folded to completion once.
      const stored = await storedResult(store, data.batchId, data.docId);
      if (stored?.status === 'completed') {
        jlog.info('result already stored; not folding again');
        // The attempt that stored it may have died before counting it; counting is idempotent.
        await recordDone(data.batchId, { docId: data.docId, status: 'completed', tokens: stored.result.tokens, bytes: data.bytes });
        return jobReturn(stored.result);
      }
      const outcome = await processDocument(
        data,
        { store, models: deps.models, log: jlog, metrics, admission, ...(deps.maxBatchSize ? { maxBatchSize: deps.maxBatchSize } : {}) },
        {
          attempt,
          writerId: `${job.id}:${attempt}:${workerName}`,
          shouldStop: () => stopping,
          isCancelled: () => registry.isCancelled(data.batchId),
          onProgress: (p) => job.updateProgress({ tokens: p.tokens, totalTokens: p.totalTokens, step: p.step, totalSteps: p.totalSteps, etaMs: p.etaMs } satisfies FoldProgress),
        },
      ).catch((err: unknown) => {
        // This attempt lost its lock (the process was paused or cut off) and another took the job
        // over; BullMQ cannot record the failure without the lock, so say here why the fold ended.
        if (err instanceof CheckpointFencedError) jlog.warn({ err }, 'another worker took this document over; this attempt stops without committing');
        throw err;
      });
      switch (outcome.kind) {
        case 'completed':
        case 'failed': {
          const { result } = outcome;
          await recordDone(data.batchId, { docId: data.docId, status: result.status, tokens: result.tokens, bytes: data.bytes });
          await metrics.recordDocument(result.status);
          if (result.status === 'failed') throw new UnrecoverableError(`${result.error?.code}: ${result.error?.message}`);
          return jobReturn(result);
        }
        case 'cancelled':
          await recordDone(data.batchId, { docId: data.docId, status: 'cancelled', tokens: 0, bytes: data.bytes });
          throw new BatchCancelledError(data.batchId, data.docId);
        case 'stopped':
          jlog.info({ step: outcome.step }, 'stopping: checkpoint committed, job handed back');
          await job.moveToWait(token);
          throw new WaitingError();
      }
    },
    {
      connection,
      prefix: deps.prefix,
      // Recorded on each job as `processedBy`, so Bull Board and operators see which process holds it.
      name: workerName,
      concurrency: deps.concurrency,
      ...locks,
      maxStalledCount: MAX_STALLED_COUNT,
      autorun: true,
    },
  );

  const batches = new Worker<BatchJob>(
    QUEUE_NAMES.batches,
    async (job) => {
      if (job.name !== JOB_NAMES.finalizeBatch) return;
      const data = BatchJob.parse(job.data);
      await loadBatchEntry({ registry, store }, data.batchId);
      await registry.setState(data.batchId, 'finalizing');
      const documentIds: string[] = [];
      for (const key of data.corpus) for (const d of (await readCorpusIndex(store, key)).documents) documentIds.push(d.docId);
      const failures = Object.fromEntries(
        Object.entries(await job.getIgnoredChildrenFailures()).map(([childKey, reason]) => [docIdOfChildKey(data.batchId, childKey), reason]),
      );
      // In a cancelled batch, a document without a result was cancelled, not failed.
      const cancelled = (await registry.isCancelled(data.batchId)) ? documentIds : [];
      const written = await finalizeBatch({ store, batchId: data.batchId, documentIds, failures, cancelled });
      // A document whose job ended without a worker counting it (failed by BullMQ itself, e.g. for
      // stalling) is counted as its stub line says, so the counts equal the results; counting is
      // once per document, so one counted already is not counted again.
      for (const stub of written.stubs) await registry.recordDocumentDone(data.batchId, { docId: stub.docId, status: stub.status, tokens: 0, bytes: 0 });
      const state = await registry.finish(data.batchId);
      const { stubs, ...summary } = written;
      log.info({ batchId: data.batchId, state, ...summary, stubs: stubs.length }, 'batch finalized');
      return summary;
    },
    { connection, prefix: deps.prefix, name: workerName, concurrency: 1, ...locks, autorun: true },
  );

  for (const w of [documents, batches]) {
    // A process paused or cut off past the lock duration loses its jobs' locks: another worker may
    // take them over, and checkpoint fencing stops this attempt at its next commit. BullMQ reports
    // that as errors; they are expected, so they are warnings here, said once.
    w.on('lockRenewalFailed', (jobIds) => log.warn({ jobIds }, 'could not renew job locks; another worker may take these jobs over'));
    w.on('error', (err) => {
      if (err.message.startsWith('could not renew lock for job ')) return; // said by lockRenewalFailed
      // The job belongs to the worker that took it over, which records its outcome; BullMQ refuses ours.
      const code = (err as { code?: unknown }).code;
      if (code === ErrorCode.JobLockNotExist || code === ErrorCode.JobLockMismatch) {
        log.warn({ err: err.message }, 'this worker lost the job to another; its outcome is recorded there');
        return;
      }
      log.error({ err }, 'queue worker error');
    });
  }
  // A document that failed its last attempt without a result (a transient error every time, or
  // stalled too often) is counted here, so the registry's counters alone say how many failed. A
  // permanent failure or a cancel was counted where it was thrown (counting is per document, once).
  documents.on('failed', (job, err) => {
    log.warn({ jobId: job?.id, err: err.message }, 'document job failed');
    if (!job || err instanceof BatchCancelledError || err instanceof UnrecoverableError || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    const data = DocumentJob.safeParse(job.data);
    if (!data.success) return;
    recordDone(data.data.batchId, { docId: data.data.docId, status: 'failed', tokens: 0, bytes: data.data.bytes }).catch((e: unknown) =>
      log.warn({ jobId: job.id, err: (e as Error).message }, 'could not count the failed document; the batch status shows it when the batch finalizes'),
    );
  });

  return {
    ready: async () => {
      await Promise.all([documents.waitUntilReady(), batches.waitUntilReady()]);
    },
    healthy: () => !documents.closing && documents.isRunning(),
    stop: async () => {
      stopping = true;
      await Promise.all([documents.close(), batches.close()]);
    },
  };
}

/**
 * What a document job returns to BullMQ, which keeps it on the job and in its batch's parent: a
 * summary and where the result is, not the result (whose paths and answers can be large, and
 * which the store already holds).
 */
export interface DocumentJobReturn {
  readonly status: DocumentResult['status'];
  readonly tokens: number;
  /** Store key of the DocumentResult. */
  readonly result: string;
}

function jobReturn(result: DocumentResult): DocumentJobReturn {
  return { status: result.status, tokens: result.tokens, result: documentResultKey(result.batchId, result.docId) };
}

/** `bull:<prefix>:<queue>:<batchId>-<docId>` (the child's key) -> docId. */
function docIdOfChildKey(batchId: string, childKey: string): string {
  const id = childKey.slice(childKey.lastIndexOf(':') + 1);
  return id.startsWith(`${batchId}-`) ? id.slice(batchId.length + 1) : id;
}

