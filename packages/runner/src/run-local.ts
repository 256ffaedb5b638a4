/**
 * `kvfold run`: the embedded default. Ingests a corpus into a filesystem object store and folds
 * every document in this process, one after another — the same ingest, shards, checkpoints and
 * processDocument() as the distributed system, without Redis or S3. Running it again skips
 * documents whose stored result is `completed`, folds again (resuming from their checkpoints) the
 * ones whose stored result is `failed` — unless `keepFailures` — and resumes the one that was
 * interrupted.
 */
import { BatchSpec, type BatchSpecInput, DEFAULT_MAX_TOKENS_PER_DOCUMENT, type DocumentJob, DocumentResult, deriveBatchId, documentResultKey, foldSettingsOf } from '@kvfold/contract';
import { type IngestReport, foldOrder, ingest, tokenBudgetFor, uploadCorpus } from '@kvfold/producer';
import { type ObjectStore, ObjectNotFoundError } from '@kvfold/storage';
import type { Logger } from 'pino';
import { type FinalizeBatchResult, finalizeBatch } from './finalize-batch.ts';
import type { ModelCache } from './model-cache.ts';
import { processDocument, type ProcessControl } from './process-document.ts';

export interface LocalRunInput {
  readonly inputs: readonly string[];
  /** Batch settings; `corpus` is filled in from the ingest. */
  readonly spec: Omit<BatchSpecInput, 'corpus'>;
  readonly store: ObjectStore;
  readonly models: ModelCache;
  readonly log: Logger;
  readonly shouldStop?: () => boolean;
  /** Keep stored `failed` results as they are instead of folding those documents again. */
  readonly keepFailures?: boolean;
  /** Told before each document and after each fold step. */
  readonly onDocument?: (info: { index: number; total: number; paths: readonly string[]; skipped: boolean; earlier: 'completed' | 'failed' | null }) => void;
  readonly onProgress?: ProcessControl['onProgress'];
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
  const grouping = input.spec.grouping ?? 'file';
  // The same budget the API applies: documents proven too long are refused before anything is folded.
  const tokenBudget = await tokenBudgetFor(input.spec.model, input.spec.maxTokensPerDocument ?? DEFAULT_MAX_TOKENS_PER_DOCUMENT);
  const docs = ingest(input.inputs, { grouping, tokenBudget });
  const corpus = await uploadCorpus(store, docs, { grouping });
  const spec = BatchSpec.parse({ ...input.spec, corpus: [corpus.indexKey] });
  const batchId = deriveBatchId([corpus.corpusId], spec);
  const fold = foldSettingsOf(spec);
  // The queue's order: long documents first, those that may not fit the token limit last.
  const order = foldOrder(corpus.index.documents, fold.maxTokensPerDocument);
  let skipped = 0;
  let retried = 0;
  let completed = 0;
  let failed = 0;
  let cleanupWarnings = 0;
  let stopped = false;
  for (const [i, d] of order.entries()) {
    const earlier = await storedStatus(store, documentResultKey(batchId, d.docId));
    const skip = earlier === 'completed' || (earlier === 'failed' && input.keepFailures === true);
    input.onDocument?.({ index: i, total: order.length, paths: d.paths, skipped: skip, earlier });
    if (skip) {
      skipped++;
      continue;
    }
    if (input.shouldStop?.()) {
      stopped = true;
      break;
    }
    const job: DocumentJob = { batchId, docId: d.docId, corpusId: corpus.corpusId, shard: d.shard, paths: d.paths, bytes: d.bytes, fold };
    const outcome = await processDocument(job, { store, models: input.models, log }, {
      attempt: 1,
      writerId: `local:${process.pid}:${Date.now()}`,
      ...(input.shouldStop ? { shouldStop: input.shouldStop } : {}),
      ...(input.onProgress ? { onProgress: input.onProgress } : {}),
    });
    if (earlier !== null) retried++;
    if (outcome.kind === 'completed') {
      completed++;
      if (outcome.cleanupFailed) cleanupWarnings++;
    } else if (outcome.kind === 'failed') failed++;
    else {
      stopped = true;
      break;
    }
  }
  const results = stopped ? null : await finalizeBatch({ store, batchId, documentIds: order.map((d) => d.docId) });
  return { batchId, corpusId: corpus.corpusId, documents: order.length, skipped, retried, completed, failed, cleanupWarnings, stopped, report: corpus.report, results };
}

/**
 * The status of a stored result, or null when there is none. A result that cannot be read as one
 * counts as `failed`, so the document is folded again.
 */
async function storedStatus(store: ObjectStore, key: string): Promise<'completed' | 'failed' | null> {
  let text: string;
  try {
    text = new TextDecoder().decode(await store.getBytes(key));
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return null;
    throw err;
  }
  try {
    return DocumentResult.parse(JSON.parse(text)).status === 'completed' ? 'completed' : 'failed';
  } catch {
    return 'failed';
  }
}
