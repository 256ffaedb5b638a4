/**
 * What a fold costs by construction: the model FLOPs it performs, the bytes its weights and cache
 * take, and the workspace one step's attention needs, from config.json and the chunk schedule.
 */
import { chunkSpans, type KvLayout, kvRowBytes } from '@kvfold/fold-core';
import type { ModelConfig } from '@kvfold/onnx';

export interface ModelShape {
  readonly layers: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
}

export function shapeOf(config: ModelConfig): ModelShape {
  const heads = config.num_attention_heads;
  return {
    layers: config.num_hidden_layers,
    hidden: config.hidden_size,
    intermediate: Number((config as Record<string, unknown>).intermediate_size ?? 0),
    heads,
    kvHeads: config.num_key_value_heads ?? heads,
    headDim: config.head_dim ?? config.hidden_size / heads,
    vocab: config.vocab_size,
  };
}

/** Multiply-adds per token in the decoder layers' dense projections (the embedding is a lookup). */
export function layerParams(s: ModelShape): number {
  const attention = s.hidden * (s.heads + 2 * s.kvHeads) * s.headDim + s.heads * s.headDim * s.hidden;
  const mlp = 3 * s.hidden * s.intermediate;
  return s.layers * (attention + mlp);
}

/** Multiply-adds of lm_head for one position. */
export function lmHeadParams(s: ModelShape): number {
  return s.hidden * s.vocab;
}

/**
 * FLOPs of folding `tokens` in chunks of `chunkSize`: 2 per multiply-add in the projections of
 * every token, lm_head once per step (a fold needs only each step's last logits; NLL would need
 * every position's), and 4 · headDim per (query head, query, visible key) in attention (QKᵀ and
 * PV), counting exactly the keys each query may see under the causal mask.
 */
export function foldFlops(s: ModelShape, tokens: number, chunkSize: number): number {
  let visible = 0; // sum over queries of the keys each sees
  const spans = chunkSpans(tokens, chunkSize);
  for (const { start, end } of spans) {
    const n = end - start;
    visible += n * start + (n * (n + 1)) / 2;
  }
  return 2 * tokens * layerParams(s) + 2 * spans.length * lmHeadParams(s) + 4 * s.headDim * s.heads * s.layers * visible;
}

/**
 * Bytes one step's attention holds beyond the cache, at the last step of a fold of `rows` rows in
 * chunks of `chunkSize` (the largest step): one layer's present, the copy of the cache the kernel
 * builds (GroupQueryAttention fed the whole buffer copies it all), and for MatMul/Softmax attention
 * two score tensors (the scores, masked in place, and their softmax) and the step's mask.
 * GroupQueryAttention's scores stay in its tiles (ONNX Runtime's flash path), so only its present
 * counts.
 */
export function stepWorkspaceBytes(s: ModelShape, layout: KvLayout, rows: number, chunkSize: number, attention: 'GroupQueryAttention' | 'Concat' | 'standard'): number {
  const present = kvRowBytes(layout) / layout.layers; // one layer's K and V per row
  const scores = s.heads * chunkSize * rows * 4;
  if (attention === 'GroupQueryAttention') return rows * present;
  return rows * present + 2 * scores + chunkSize * rows * 4;
}
