/** @kvfold/fold-core: the fold itself. Pure: no I/O, no runtime, no environment. */
export * from './kv-state.ts';
export * from './chunks.ts';
export type { DecoderModel, ModelLayout, StepInput, StepOutput, LogitsMode } from './model.ts';
export { fold, foldAll } from './fold.ts';
export type { FoldOptions, FoldStart, FoldStep, FoldStepInfo } from './fold.ts';
export { generate } from './generate.ts';
export type { Generation, GenerateOptions, StopReason } from './generate.ts';
export { fullPolicy } from './policy.ts';
export type { KvPolicy } from './policy.ts';
export { streamingPolicy } from './streaming.ts';
export type { StreamingOptions } from './streaming.ts';
export { int8Policy, quantizeChannels, dequantizeInto, DEFAULT_INT8_GROUP_ROWS } from './int8.ts';
export type { Int8Channels, Int8Group, Int8KvState } from './int8.ts';
export { createPolicy } from './policies.ts';
export type { AnyKvPolicy, KvStorage, PolicyContext, PolicySpec } from './policies.ts';
export { ropeFrequencies, rotateKeyRows } from './rope.ts';
export { argmax, tokenNll } from './nll.ts';
