/**
 * A Llama-architecture model as data: its config and its weights, kept apart from the graph.
 *
 * Names and shapes follow Hugging Face `LlamaForCausalLM` (`nn.Linear` weights are [out, in]);
 * the ONNX builder transposes them for MatMul. Any weight source — seeded random (tiny-llama),
 * hand-constructed (recall) — produces this, and one graph builder serves all of them.
 *
 * Conventions the builder implements (and constructions may rely on):
 *   h      = embed_tokens[ids]                                    // [seq, hidden]
 *   per layer i:
 *     x    = rmsnorm(h) * input_layernorm                         // x / sqrt(mean(x^2) + eps)
 *     q,k,v = x·q_projᵀ (+ q_proj.bias), x·k_projᵀ (+ bias), x·v_projᵀ (+ bias)
 *     RoPE on q and k, HF "rotate_half" layout: dims j and j + headDim/2 form pair j,
 *       rotated by angle position * invFreq[j], invFreq[j] = rope_theta^(-2j/headDim),
 *       j in [0, headDim/2), scaled per rope.ts when `rope_scaling` is set
 *     attention: softmax(q·kᵀ / sqrt(headDim) + causal mask) · v, GQA (query head h reads
 *       kv head floor(h / (heads / kvHeads)))
 *     h    = h + attn · o_projᵀ (+ o_proj.bias)
 *     x    = rmsnorm(h) * post_attention_layernorm
 *     h    = h + (silu(x·gate_projᵀ) * (x·up_projᵀ)) · down_projᵀ   (each + its bias when present)
 *   logits = (rmsnorm(h) * norm) · lm_headᵀ   (lm_head = embed_tokens when tied)
 */

import type { RopeScaling } from './rope.ts';

/** The fields of a Hugging Face `config.json` the builder reads (and writes back out). */
export interface LlamaConfig {
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads: number;
  readonly head_dim: number;
  readonly rope_theta: number;
  /** RoPE frequency scaling (absent or null: plain RoPE). */
  readonly rope_scaling?: RopeScaling | null;
  readonly rms_norm_eps: number;
  readonly max_position_embeddings: number;
  readonly tie_word_embeddings: boolean;
  readonly bos_token_id: number | null;
  readonly eos_token_id: number | number[] | null;
  readonly pad_token_id?: number | null;
}

/** A dense float32 tensor, row-major. */
export interface WeightTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * Weights by Hugging Face name:
 *   model.embed_tokens.weight                         [vocab, hidden]
 *   model.layers.{i}.input_layernorm.weight           [hidden]
 *   model.layers.{i}.self_attn.q_proj.weight          [heads * headDim, hidden]
 *   model.layers.{i}.self_attn.k_proj.weight          [kvHeads * headDim, hidden]
 *   model.layers.{i}.self_attn.v_proj.weight          [kvHeads * headDim, hidden]
 *   model.layers.{i}.self_attn.o_proj.weight          [hidden, heads * headDim]
 *   model.layers.{i}.post_attention_layernorm.weight  [hidden]
 *   model.layers.{i}.mlp.gate_proj.weight             [intermediate, hidden]
 *   model.layers.{i}.mlp.up_proj.weight               [intermediate, hidden]
 *   model.layers.{i}.mlp.down_proj.weight             [hidden, intermediate]
 *   model.norm.weight                                 [hidden]
 *   lm_head.weight                                    [vocab, hidden]   (absent when tied)
 * and, optionally, a bias [out] beside any projection: `<projection>.bias` (Qwen2's q/k/v,
 * Llama's `attention_bias` and `mlp_bias`).
 */
export type LlamaWeights = ReadonlyMap<string, WeightTensor>;

/**
 * What the graph builder reads weights through: a map, or a source that loads each tensor when
 * asked (a checkpoint on disk), so only the tensor being written is held. Each name is asked once,
 * and a tensor's data is used only until the next `get`: a source may reuse its memory.
 */
export interface WeightLookup {
  get(name: string): WeightTensor | undefined;
}

/** Everything needed to write a model folder. */
export interface LlamaSpec {
  /** Folder-level model name, e.g. "tiny-llama". */
  readonly name: string;
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  /** The `tokenizer.json` object (Hugging Face tokenizers format). */
  readonly tokenizer: Record<string, unknown>;
  /** The `tokenizer_config.json` object. */
  readonly tokenizerConfig: Record<string, unknown>;
  /** The `generation_config.json` object. */
  readonly generationConfig: Record<string, unknown>;
  /** Free-form facts written to the folder's README.md. */
  readonly description: string;
}
