/**
 * `kvfold run`: the embedded default. Ingests a corpus into a filesystem object store and folds
 * every document in this process — the same ingest, shards, checkpoints and processDocument() as
 * the distributed system, without Redis or S3. `concurrency` documents are folded at once (their
 * steps share session runs where the model's session serves several slots, and their caches wait
 * for room together: cache-admission.ts), each taken in the batch's order. Running it again skips
 * documents whose stored result is `completed`, folds again (resuming from their checkpoints) the
 * ones whose stored result is `failed` — unless `keepFailures` — and resumes the one that was
 * interrupted.
 */
import { DEFAULT_MAX_TOKENS_PER_DOCUMENT } from '@kvfold/contract';
import type { BatchSpecInput } from '@kvfold/contract';
import { checkModelRef, type IngestReport, ingest, planBatch, tokenBudgetFor, uploadCorpus } from '@kvfold/producer';
import type { ObjectStore } from '@kvfold/storage';
import type { Logger } from 'pino';
import { CacheAdmission } from './cache-admission.ts';
import { type FinalizeBatchResult, finalizeBatch } from './finalize-batch.ts';
import type { ModelCache } from './model-cache.ts';
import { processDocument, type ProcessControl } from './process-document.ts';
import { needsFold, storedResult } from './stored-result.ts';

export interface LocalRunInput {
  readonly inputs: readonly string[];
  /** Batch settings; `corpus` is filled in from the ingest. */
  readonly spec: Omit<BatchSpecInput, 'corpus'>;
  readonly store: ObjectStore;
  readonly models: ModelCache;
  readonly log: Logger;
  readonly shouldStop?: () => boolean;
  /** Documents folded at once (default 1): their steps share session runs where the model's session serves several slots. */
  readonly concurrency?: number;
  /** Keep stored `failed` results as they are instead of folding those documents again. */
  readonly keepFailures?: boolean;
  /** Told before each document and after each fold step. */
  readonly onDocument?: (info: { index: number; total: number; paths: readonly string[]; skipped: boolean; earlier: 'completed' | 'failed' | null }) => void;
  /** Told after each fold step of a document (`index`: which; several fold at once). */
  readonly onProgress?: (progress: Parameters<NonNullable<ProcessControl['onProgress']>>[0] & { readonly index: number }) => void;
}

export interface LocalRunResult {
  readonly batchId: string;
  readonly corpusId: string;
  readonly documents: number;
  /** Documents whose stored result was reused (finished in an earlier run, or a kept failure). */
  readonly skipped: number;
  /** Documents that had failed in an earlier run and were folded again in this one. */
  readonly retried: number;
  readonly completed: number;
  readonly failed: number;
  /** Documents whose checkpoint could not be deleted after their result was stored (logged as warnings). */
  readonly cleanupWarnings: number;
  /** Set when a stop request ended the run early; rerun to continue. */
  readonly stopped: boolean;
  readonly report: IngestReport | undefined;
  readonly results: FinalizeBatchResult | null;
}

export async function runLocal(input: LocalRunInput): Promise<LocalRunResult> {
  const { store, log } = input;
  // The model is looked at first, as enqueue does: a folder that is not one fails here, in one
  // line, before any batch is made.
  await checkModelRef(input.spec.model, input.models.storeOptions);
  const grouping = input.spec.grouping ?? 'file';
  // The same budget the API applies: documents proven too long are refused before anything is folded.
  const tokenBudget = await tokenBudgetFor(input.spec.model, input.spec.maxTokensPerDocument ?? DEFAULT_MAX_TOKENS_PER_DOCUMENT);
  const docs = ingest(input.inputs, { grouping, tokenBudget });
  const corpus = await uploadCorpus(store, docs, { grouping });
  const { batchId, jobs } = planBatch({ ...input.spec, corpus: [corpus.indexKey] }, corpus.index);
  let skipped = 0;
  let retried = 0;
  let completed = 0;
  let failed = 0;
  let cleanupWarnings = 0;
  let stopped = false;
  const admission = new CacheAdmission();
  let next = 0;
  /** One lane: takes the next document in order until none is left or a stop ends the run. */
  const lane = async () => {
    while (!stopped && next < jobs.length) {
      const i = next++;
      const job = jobs[i] as (typeof jobs)[number];
      const stored = await storedResult(store, batchId, job.docId);
      const skip = !needsFold(stored, { keepFailures: input.keepFailures === true });
      input.onDocument?.({ index: i, total: jobs.length, paths: job.paths, skipped: skip, earlier: stored?.status ?? null });
      if (skip) {
        skipped++;
        continue;
      }
      if (input.shouldStop?.()) {
        stopped = true;
        break;
      }
      const outcome = await processDocument(job, { store, models: input.models, log, admission }, {
        attempt: 1,
        writerId: `local:${process.pid}:${Date.now()}:${i}`,
        ...(input.shouldStop ? { shouldStop: input.shouldStop } : {}),
        ...(input.onProgress ? { onProgress: (p) => input.onProgress?.({ ...p, index: i }) } : {}),
      });
      if (stored !== null) retried++;
      if (outcome.kind === 'completed') {
        completed++;
        if (outcome.cleanupFailed) cleanupWarnings++;
      } else if (outcome.kind === 'failed') failed++;
      else stopped = true;
    }
  };
  const lanes = Math.max(1, Math.min(input.concurrency ?? 1, jobs.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  const results = stopped ? null : await finalizeBatch({ store, batchId, documentIds: jobs.map((d) => d.docId) });
  return { batchId, corpusId: corpus.corpusId, documents: jobs.length, skipped, retried, completed, failed, cleanupWarnings, stopped, report: corpus.report, results };
}
