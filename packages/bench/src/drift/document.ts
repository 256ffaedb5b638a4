/** The document a drift run folds: a haystack written in the model's own vocabulary. */
import type { LoadedModel } from '@kvfold/onnx';
import { writeHaystack } from '../niah/haystack.ts';
import { type NiahModel, selectProtocol } from '../niah/run-niah.ts';
import { checkDriftLength, type ModelDims } from './drift.ts';

/**
 * `length` tokens of the NIAH filler of the protocol the vocabulary expresses (recall tokens, or
 * prose), with one needle at mid-depth, so every kind of token the model reads is in the document.
 */
export function driftDocument(model: NiahModel, length: number, seed = 0): Int32Array {
  checkDriftLength(length, model.decoder.layout.maxPositions); // before writing a document it cannot fold
  const protocol = selectProtocol(model, { lengths: [length], depths: [0.5], chunkSizes: [1], policy: { kind: 'full' }, kv: 'f32', trials: 1, seed, needlesPerHaystack: 1, protocol: 'auto' });
  return writeHaystack(protocol, length, [0.5], seed).tokens;
}

/** The model dimensions the reference-memory estimate needs. */
export function modelDims(loaded: LoadedModel): ModelDims {
  const c = loaded.folder.config;
  return { ...loaded.decoder.layout, heads: c.num_attention_heads, hidden: c.hidden_size };
}
