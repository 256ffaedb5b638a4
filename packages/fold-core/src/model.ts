/**
 * The DecoderModel port: what the fold needs from a frozen decoder, and nothing else.
 * Adapters (ONNX Runtime in @kvfold/onnx) implement it; the fold never sees a runtime.
 */
import type { KvLayout, KvRows, KvState } from './kv-state.ts';

export interface ModelLayout extends KvLayout {
  readonly vocabSize: number;
}

/** Which logits a step returns: every position (exactness, NLL), only the last (generation), or none. */
export type LogitsMode = 'all' | 'last' | 'none';

export interface StepInput {
  /** Token ids of this chunk. */
  readonly tokens: Int32Array; // [n]
  /** The cache the chunk attends to. Not modified. */
  readonly past: KvState;
  /** Position id of tokens[0]; the rest follow. Usually `past.nextPosition`. */
  readonly position: number;
  readonly logits: LogitsMode;
}

export interface StepOutput {
  /** [n, vocab] for 'all', [1, vocab] for 'last', empty for 'none'. */
  readonly logits: Float32Array;
  /** K/V rows of the chunk's tokens, to append to the cache. */
  readonly rows: KvRows; // rows = n
}

export interface DecoderModel {
  readonly layout: ModelLayout;
  /** Runs the chunk over the past cache. */
  step(input: StepInput): Promise<StepOutput>;
}
