/**
 * planBatch(): a batch spec over corpora -> the batch id and one DocumentJob per distinct document,
 * in fold order. The one planner behind `kvfold run` (which folds the jobs in this process) and
 * enqueue (which puts them on the queue): the same corpora and settings give the same batch id and
 * the same jobs either way.
 */
import { BatchSpec, type BatchSpecInput, type CorpusIndex, DocumentJob, deriveBatchId, foldSettingsOf, parseOrThrow } from '@kvfold/contract';
import { ProducerError, ProducerErrorCode } from './errors.ts';
import { foldOrder } from './token-budget.ts';

export interface BatchPlan {
  readonly batchId: string;
  readonly spec: BatchSpec;
  /** Content ids of the corpora, in the order given. */
  readonly corpusIds: readonly string[];
  /**
   * One job per distinct document (by content id, across corpora; the first corpus that has it
   * names it), in fold order: those that fit the token limit first, longest first, then those that
   * may not fit (token-budget.ts, `foldOrder`).
   */
  readonly jobs: readonly DocumentJob[];
}

export function planBatch(specInput: BatchSpecInput | BatchSpec, corpora: CorpusIndex | readonly CorpusIndex[]): BatchPlan {
  const spec = parseOrThrow(BatchSpec, specInput, 'batch spec');
  const indexes: readonly CorpusIndex[] = Array.isArray(corpora) ? corpora : [corpora as CorpusIndex];
  const batchId = deriveBatchId(
    indexes.map((c) => c.corpusId),
    spec,
  );
  const fold = foldSettingsOf(spec);
  const jobs = new Map<string, DocumentJob>();
  for (const corpus of indexes) {
    for (const doc of corpus.documents) {
      if (jobs.has(doc.docId)) continue;
      jobs.set(doc.docId, DocumentJob.parse({ batchId, docId: doc.docId, corpusId: corpus.corpusId, shard: doc.shard, paths: doc.paths, bytes: doc.bytes, fold }));
    }
  }
  if (jobs.size === 0) {
    throw new ProducerError(ProducerErrorCode.EnqueueEmpty, `batch ${batchId} has no documents (corpora: ${spec.corpus.join(', ')})`);
  }
  return { batchId, spec, corpusIds: indexes.map((c) => c.corpusId), jobs: foldOrder([...jobs.values()], fold.maxTokensPerDocument) };
}
