/**
 * KV policies decide what the accumulator keeps after each fold step. The cache does the work in
 * place (`evict`); a policy only decides. Siblings, picked by `createPolicy`:
 *
 *   full       keeps every row; the fold is exact (its cache equals a single pass's cache)
 *   streaming  StreamingLLM: the first `sink` rows plus the most recent `window` (streaming-policy.ts)
 *
 * The width rows are held at (float32, float16, int8) is the cache's own (its layout's dtype), not
 * a policy's: every policy works at every width.
 *
 * Policies act between fold steps only: a question and its answer extend the folded cache and are
 * rewound afterwards, so every question reads the same folded state.
 */
import type { KvCache } from './kv-cache.ts';

export interface KvPolicy {
  /** Stable description for fingerprints, e.g. `full`, `streaming(sink=4,window=1024)`. */
  readonly name: string;
  /** True when every step only appends, so checkpoints can be append-only segments. */
  readonly appendOnly: boolean;
  /**
   * Rows the cache must hold to fold `tokens` tokens in chunks of `chunkSize` and then read `extra`
   * more (the longest question plus its answer): what a fold reserves up front.
   */
  rows(tokens: number, chunkSize: number, extra: number): number;
  /** Runs after a fold step appended `added` rows. */
  afterStep(cache: KvCache, added: number): Promise<void>;
}

export const fullPolicy: KvPolicy = {
  name: 'full',
  appendOnly: true,
  rows: (tokens, _chunkSize, extra) => tokens + extra,
  afterStep: async () => {},
};
