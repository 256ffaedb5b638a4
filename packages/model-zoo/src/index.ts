/** @kvfold/model-zoo: Llama-architecture models built as ONNX folders in the optimum layout. */
export type { LlamaConfig, LlamaSpec, LlamaWeights, WeightTensor } from './llama-spec.ts';
export { GraphBuilder, DataType } from './onnx-graph.ts';
export { buildLlamaGraph, defaultAttention, ropeInverseFrequencies, OPSET } from './llama-graph.ts';
export type { AttentionKind, LlamaGraphOptions } from './llama-graph.ts';
export { writeModelFolder, DEFAULT_EXTERNAL_THRESHOLD } from './model-folder.ts';
export type { WriteModelOptions, WrittenModel } from './model-folder.ts';
export { tinyLlamaSpec, DEFAULT_SEED } from './tiny-llama.ts';
export type { TinyLlamaOptions } from './tiny-llama.ts';
export { kvHeavySpec } from './kv-heavy.ts';
export type { KvHeavyOptions } from './kv-heavy.ts';
export { randomLlamaWeights } from './random-llama.ts';
export { byteLevelTokenizer } from './byte-tokenizer.ts';
export { SeededRandom, seededRandom } from './rng.ts';
export { MODEL_NAMES, modelSpec } from './registry.ts';
export type { ModelName } from './registry.ts';
export * from './recall/index.ts';
