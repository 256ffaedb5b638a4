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

/**
 * A packed step: tokens of several sequences that all read the cache's first `prefixRows` rows (a
 * folded document) and, beyond them, only their own rows, run as one step. Each token is appended
 * to the cache as a row of its sequence.
 */
export interface PackedStepInput {
  readonly cache: KvCache;
  readonly tokens: Int32Array; // [S]
  /** Each token's position. */
  readonly positions: Int32Array; // [S]
  /** Each token's sequence; a token reads its sequence's earlier tokens in the step, not the others'. */
  readonly sequences: Int32Array; // [S]
  /** Rows [0, prefixRows) every sequence reads. */
  readonly prefixRows: number;
  /** The sequence of each cache row in [prefixRows, cache.length). */
  readonly rowSequences: Int32Array;
  /** The tokens whose logits come back, in order. */
  readonly logitsAt: Int32Array; // [k]
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
  /** True where `stepPacked` can run (`generateBatch` answers one question at a time otherwise). */
  readonly packs?: boolean;
  /** Runs a packed step: [k, vocab] logits of the tokens `logitsAt` names. */
  stepPacked?(input: PackedStepInput): Promise<StepOutput>;
}
