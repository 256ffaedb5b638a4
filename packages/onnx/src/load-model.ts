/**
 * Loads everything a fold needs from a model folder: the decoder (in its worker thread), the
 * tokenizer, the stop tokens and the fingerprints.
 */
import { type ModelFingerprints, fingerprintModel } from './fingerprint.ts';
import { type ModelFolder, readModelFolder, stopTokenIds } from './model-folder.ts';
import { type DecoderOptions, OnnxDecoder } from './onnx-decoder.ts';
import { TextTokenizer } from './tokenizer.ts';

export interface LoadModelOptions extends DecoderOptions {
  /** File under onnx/ to load (default model.onnx). */
  readonly onnxFile?: string;
}

export interface LoadedModel {
  readonly folder: ModelFolder;
  readonly decoder: OnnxDecoder;
  readonly tokenizer: TextTokenizer;
  readonly stopTokens: readonly number[];
  readonly fingerprints: ModelFingerprints;
  close(): Promise<void>;
}

export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const folder = await readModelFolder(dir, options.onnxFile);
  const tokenizer = new TextTokenizer(folder);
  const [decoder, fingerprints] = await Promise.all([OnnxDecoder.create(folder, options), fingerprintModel(folder)]);
  return {
    folder,
    decoder,
    tokenizer,
    stopTokens: stopTokenIds(folder),
    fingerprints,
    close: () => decoder.close(),
  };
}
