/** @kvfold/onnx: a DecoderModel for Hugging Face / optimum ONNX decoder folders on onnxruntime-node. */
export { ModelError } from './errors.ts';
export type { ModelErrorCode } from './errors.ts';
export { readModelFolder, ropeInverseFrequencies, stopTokenIds } from './model-folder.ts';
export type { ModelConfig, ModelFolder } from './model-folder.ts';
export { fingerprintModel } from './fingerprint.ts';
export type { ModelFingerprints } from './fingerprint.ts';
export { TextTokenizer } from './tokenizer.ts';
export type { ChatMessage } from './tokenizer.ts';
export { OnnxDecoder, discover } from './onnx-decoder.ts';
export type { DecoderOptions } from './onnx-decoder.ts';
export type { Device, IoNames } from './protocol.ts';
export { loadModel } from './load-model.ts';
export type { LoadedModel, LoadModelOptions } from './load-model.ts';
