/** @kvfold/fold-core: the fold itself. Pure: no I/O, no runtime, no environment. */
export * from './kv-state.ts';
export * from './chunks.ts';
export type { DecoderModel, ModelLayout, StepInput, StepOutput, LogitsMode } from './model.ts';
export { fold, foldAll } from './fold.ts';
export type { FoldOptions, FoldStart, FoldStep, FoldStepInfo } from './fold.ts';
export { generate } from './generate.ts';
export type { Generation, GenerateOptions, StopReason } from './generate.ts';
export { createPolicy, fullPolicy } from './policy.ts';
export type { KvPolicy, PolicySpec } from './policy.ts';
export { argmax, tokenNll } from './nll.ts';
