/** @kvfold/runner: the single code path that folds a document, behind `kvfold` and the queue worker. */
export { foldDocument } from './fold-document.ts';
export type { Answer, ChunkNll, FoldDocumentInput, FoldDocumentResult, Query } from './fold-document.ts';
export { measureFold, syntheticText } from './measure-fold.ts';
export type { FoldMeasurement } from './measure-fold.ts';
export { foldResumable, DEFAULT_CHECKPOINT_PREFIX } from './resumable-fold.ts';
export type { CheckpointReport, CheckpointSettings, ResumableFoldInput, ResumableFoldResult } from './resumable-fold.ts';
export { storeOptionsFromEnv } from './store-config.ts';
export { resolvePolicy } from './policy-options.ts';
export type { PolicyChoice, ResolvedPolicy } from './policy-options.ts';
export * from './niah/index.ts';
export * from './drift/index.ts';
