/**
 * The DecoderModel port: what the fold needs from a frozen decoder, and nothing else.
 * Adapters (ONNX Runtime in @kvfold/onnx) implement it; the fold never sees a runtime.
 *
 * A model owns its caches: `createCache` allocates one where the model runs, and `step` reads the
 * chunk against it and appends the chunk's keys and values to it in place, at positions that
 * continue from `cache.nextPosition`.
 */
import type { KvCache } from './kv-cache.ts';
import type { KvLayout } from './kv-layout.ts';

export interface ModelLayout extends KvLayout {
  readonly vocabSize: number;
}

/** Which logits a step returns: every position (exactness, NLL), only the last (generation), or none. */
export type LogitsMode = 'all' | 'last' | 'none';

export interface StepInput {
  /** Token ids of this chunk. */
  readonly tokens: Int32Array; // [n]
  /** The cache the chunk attends to; the chunk's rows are appended to it. Must come from this model. */
  readonly cache: KvCache;
  readonly logits: LogitsMode;
}

export interface StepOutput {
  /** [n, vocab] for 'all', [1, vocab] for 'last', empty for 'none'. */
  readonly logits: Float32Array;
  /** Bytes the adapter's own code copied for this step (inputs built, rows appended, logits taken). */
  readonly copiedBytes: number;
}

export interface CacheOptions {
  /** Rows to allocate up front: a fold knows how many it will hold. The cache grows past it by doubling. */
  readonly capacity: number;
}

export interface DecoderModel {
  readonly layout: ModelLayout;
  /** A new, empty cache for this model. */
  createCache(options: CacheOptions): Promise<KvCache>;
  /** Runs the chunk over the cache and appends its rows. */
  step(input: StepInput): Promise<StepOutput>;
}
