/** @kvfold/runner: the single code path that folds a document, behind `kvfold` and the queue worker. */
export { foldDocument } from './fold-document.ts';
export type { Answer, ChunkNll, FoldDocumentInput, FoldDocumentResult, Query } from './fold-document.ts';
export { foldResumable, DEFAULT_CHECKPOINT_PREFIX } from './resumable-fold.ts';
export type { CheckpointReport, CheckpointSettings, ResumableFoldInput, ResumableFoldResult } from './resumable-fold.ts';
export { resolvePolicy } from './policy-options.ts';
export type { PolicyChoice, ResolvedPolicy } from './policy-options.ts';
export { ModelCache } from './model-cache.ts';
export type { ModelCacheOptions, ModelRefValue } from './model-cache.ts';
export { MODEL_MANIFEST, pushModel } from './model-push.ts';
export type { ModelManifest } from './model-push.ts';
export { processDocument, DOCUMENT_ERRORS } from './process-document.ts';
export type { ProcessControl, ProcessDeps, ProcessOutcome } from './process-document.ts';
export { runLocal } from './run-local.ts';
export type { LocalRunInput, LocalRunResult } from './run-local.ts';
export { finalizeBatch, FinalizeStubCode } from './finalize-batch.ts';
export type { FinalizeBatchInput, FinalizeBatchResult } from './finalize-batch.ts';
export { startQueueWorker } from './queue-worker.ts';
export type { DocumentJobReturn, QueueWorker, QueueWorkerDeps } from './queue-worker.ts';
