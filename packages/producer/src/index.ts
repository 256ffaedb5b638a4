/**
 * @kvfold/producer: corpus ingest, documents, shards, upload, enqueue.
 */
export { SkipReason, decodeEntry } from './decode-text.ts';
export type { DecodeResult, TextEncoding } from './decode-text.ts';
export { documentOf, fileHeader, makeDocument, packFiles } from './document.ts';
export type { Document } from './document.ts';
export { enqueueBatch } from './enqueue.ts';
export type { EnqueueOptions, EnqueueResult } from './enqueue.ts';
export { checkEntryPath, looksLikeArchive } from './entry-path.ts';
export type { EntryPathCheck } from './entry-path.ts';
export { ProducerError, ProducerErrorCode } from './errors.ts';
export { ingest, inputName } from './ingest.ts';
export { documentName, packedBytes, planDocuments } from './grouping.ts';
export type { DocumentPlan, PlannedFile } from './grouping.ts';
export type { IngestOptions, IngestRun } from './ingest.ts';
export { planBatch } from './plan-batch.ts';
export type { BatchPlan } from './plan-batch.ts';
export { checkModelRef } from './model-ref.ts';
export { inputKind } from './input-kind.ts';
export type { InputKind } from './input-kind.ts';
export { DEFAULT_INGEST_LIMITS, resolveLimits } from './limits.ts';
export type { IngestLimits } from './limits.ts';
export { packTree } from './pack-tree.ts';
export type { PackedTree } from './pack-tree.ts';
export { readCorpusIndex, readDocument } from './read-corpus.ts';
export { recoverBatches, retryBatch } from './requeue.ts';
export type { RecoverReport, RequeueDeps, RequeuedBatch } from './requeue.ts';
export { SUMMARY_EXAMPLES, reportExamples, summarizeReport, summaryLine } from './report.ts';
export type { IngestReport, ReasonSummary, RefusedEntry, SkippedEntry } from './report.ts';
export { DEFAULT_SHARD_BYTES, ShardLayout, ShardPacker, buildShards, corpusIdOf, corpusIndexKey, shardKey } from './shards.ts';
export type { BuiltShard, PackedDocument, Placement } from './shards.ts';
export { DOCUMENT_TOKEN_OVERHEAD, bytesThatFit, foldOrder, maxTokenBytesOf, provenTooLong, tokenBounds, tokenBudgetFor } from './token-budget.ts';
export { TokenFloor } from './token-floor.ts';
export type { TokenBounds, TokenBudget } from './token-budget.ts';
export { uploadCorpus } from './upload.ts';
export type { UploadOptions, UploadResult } from './upload.ts';
