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
import { allocKv, appendRows, emptyKv, type KvData, type KvLayout, type KvState, kvBytes } from './kv-state.ts';
import type { KvPolicy } from './policy.ts';
import { rotateKeyRows } from './rope.ts';

export interface StreamingOptions {
  readonly sink: number;
  readonly window: number;
  /** RoPE inverse frequencies of the model, [headDim / 2]. */
  readonly invFreq: Float64Array;
}

export function streamingPolicy(options: StreamingOptions): KvPolicy<KvState> {
  const { sink, window, invFreq } = options;
  if (!Number.isInteger(sink) || sink < 0) throw new RangeError(`streaming sink must be an integer >= 0, got ${sink}`);
  if (!Number.isInteger(window) || window < 1) throw new RangeError(`streaming window must be an integer >= 1, got ${window}`);
  const keep = sink + window;
  return {
    name: `streaming(sink=${sink},window=${window})`,
    appendOnly: false,
    init: emptyKv,
    view: (s) => s,
    bytes: kvBytes,
    length: (s) => s.length,
    restore: (s) => s,
    admit(state, rows) {
      const grown = appendRows(state, rows);
      const evict = grown.length - keep;
      if (evict <= 0) return grown;
      const { layout } = grown;
      if (layout.dtype !== 'float32') throw new RangeError('the streaming policy re-rotates keys and supports float32 caches only');
      if (invFreq.length !== layout.headDim / 2) {
        throw new RangeError(`streaming: ${invFreq.length} RoPE frequencies for head dim ${layout.headDim}`);
      }
      const layers = grown.layers.map((l) => {
        const key = dropRows(l.key, layout, grown.length, sink, evict) as Float32Array;
        rotateKeyRows(key, layout.kvHeads, keep, layout.headDim, sink, keep, -evict, invFreq);
        return { key, value: dropRows(l.value, layout, grown.length, sink, evict) };
      });
      return { layout, length: keep, nextPosition: keep, tokensSeen: grown.tokensSeen, layers };
    },
  };
}

/** A [kvHeads, rows, headDim] tensor without rows [at, at + count). */
function dropRows(data: KvData, layout: KvLayout, rows: number, at: number, count: number): KvData {
  const { kvHeads, headDim } = layout;
  const kept = rows - count;
  const out = allocKv(layout.dtype, kvHeads * kept * headDim);
  for (let h = 0; h < kvHeads; h++) {
    const src = h * rows * headDim;
    const dst = h * kept * headDim;
    out.set(data.subarray(src, src + at * headDim), dst);
    out.set(data.subarray(src + (at + count) * headDim, src + rows * headDim), dst + at * headDim);
  }
  return out;
}
