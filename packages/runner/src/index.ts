/** @kvfold/runner: the single code path that folds a document, behind `kvfold` and the queue worker. */
export { foldDocument } from './fold-document.ts';
export type { Answer, ChunkNll, FoldDocumentInput, FoldDocumentResult, Query } from './fold-document.ts';
export { measureFold, syntheticText } from './measure-fold.ts';
export type { FoldMeasurement } from './measure-fold.ts';
export * from './niah/index.ts';
