/**
 * StreamingLLM as a KV policy: keep the first `sink` rows (attention sinks) and the most recent
 * `window` rows; evict the rest after every step. Memory is bounded by sink + window + one chunk,
 * whatever the document length.
 *
 * Positions after eviction: as StreamingLLM does, positions are assigned within the cache. When e
 * rows are evicted, every kept window row moves e positions down and its key (cached already
 * rotated) is re-rotated by -e; the next token gets position `length`. So the cache always looks like
 * a contiguous sequence 0..length-1 to the model — which also keeps exports that derive positions
 * from the cache length (no position_ids input) correct, and never exceeds the model's trained
 * positions.
 */
import type { KvPolicy } from './policy.ts';

export interface StreamingOptions {
  readonly sink: number;
  readonly window: number;
  /** RoPE inverse frequencies of the model, [headDim / 2]. */
  readonly invFreq: Float64Array;
}

export function streamingPolicy(options: StreamingOptions): KvPolicy {
  const { sink, window, invFreq } = options;
  if (!Number.isInteger(sink) || sink < 0) throw new RangeError(`streaming sink must be an integer >= 0, got ${sink}`);
  if (!Number.isInteger(window) || window < 1) throw new RangeError(`streaming window must be an integer >= 1, got ${window}`);
  const keep = sink + window;
  return {
    name: `streaming(sink=${sink},window=${window})`,
    appendOnly: false,
    rows: (tokens, chunkSize, extra) => Math.min(tokens, keep + chunkSize) + extra,
    async afterStep(cache) {
      const evict = cache.length - keep;
      if (evict > 0) await cache.evict(sink, evict, invFreq);
    },
  };
}
