/** @kvfold/onnx: a DecoderModel for Hugging Face / optimum ONNX decoder folders on onnxruntime-node. */
export { ModelError } from './errors.ts';
export { ModelErrorCode } from './errors.ts';
export { readModelFolder, ropeInverseFrequencies, stopTokenIds, weightsOf } from './model-folder.ts';
export type { ModelConfig, ModelFolder } from './model-folder.ts';
export { FolderHash, fingerprintModel } from './fingerprint.ts';
export type { ModelFingerprints } from './fingerprint.ts';
export { TextTokenizer, unknownWarning } from './tokenizer.ts';
export type { ChatMessage, Encoded, TokenizerSource, UnknownText } from './tokenizer.ts';
export { OnnxDecoder, OnnxKvCache } from './onnx-decoder.ts';
export type { DecoderCounters, DecoderOptions } from './onnx-decoder.ts';
export { discover } from './io-names.ts';
export type { IoMeta, IoNames, ShapeConfig } from './io-names.ts';
export { deriveFoldGraph, describePlan, readGraph } from './fold-graph.ts';
export type { FoldGraph, FoldPlan, LayerPlan, PastFeed } from './fold-graph.ts';
export type { Device, FoldGraphChoice } from './protocol.ts';
export { loadModel } from './load-model.ts';
export type { LoadedModel, LoadModelOptions } from './load-model.ts';
