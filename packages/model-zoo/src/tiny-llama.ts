/**
 * tiny-llama: a small Llama-architecture decoder with seeded random weights.
 *
 * It exists to prove the fold exact and to measure throughput: every part of the architecture is
 * present (RMSNorm, RoPE, grouped-query attention with 4 query heads over 2 KV heads, SwiGLU,
 * tied lm_head), and it is small enough that a 32K-token fold takes tens of seconds on two cores.
 * Its outputs are meaningless; its arithmetic is real.
 */
import { byteLevelTokenizer } from './byte-tokenizer.ts';
import type { LlamaConfig, LlamaSpec, WeightTensor } from './llama-spec.ts';
import { SeededRandom } from './rng.ts';

export interface TinyLlamaOptions {
  readonly seed?: number;
  /** Untie lm_head from the embedding (exercises the other export shape). */
  readonly untied?: boolean;
}

export const DEFAULT_SEED = 0;

/** Embedding scale: with the tied lm_head, logits then have a standard deviation near 2, not 8. */
const EMBEDDING_STD = 0.25;

export function tinyLlamaSpec(options: TinyLlamaOptions = {}): LlamaSpec {
  const seed = options.seed ?? DEFAULT_SEED;
  const tok = byteLevelTokenizer();
  const config: LlamaConfig = {
    vocab_size: tok.vocabSize,
    hidden_size: 64,
    intermediate_size: 176,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 131072,
    tie_word_embeddings: !options.untied,
    bos_token_id: tok.bosId,
    eos_token_id: tok.eosId,
  };
  const rng = new SeededRandom(seed);
  const weights = new Map<string, WeightTensor>();
  const H = config.hidden_size;
  const D = config.head_dim;
  const put = (name: string, shape: number[], std: number) => {
    weights.set(name, { shape, data: rng.normals(shape.reduce((a, b) => a * b, 1), std) });
  };
  const norm = (name: string) => {
    const data = rng.normals(H, 0.1).map((x) => 1 + x);
    weights.set(name, { shape: [H], data });
  };
  put('model.embed_tokens.weight', [config.vocab_size, H], EMBEDDING_STD);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    norm(`${p}.input_layernorm.weight`);
    put(`${p}.self_attn.q_proj.weight`, [config.num_attention_heads * D, H], 1 / Math.sqrt(H));
    put(`${p}.self_attn.k_proj.weight`, [config.num_key_value_heads * D, H], 1 / Math.sqrt(H));
    put(`${p}.self_attn.v_proj.weight`, [config.num_key_value_heads * D, H], 1 / Math.sqrt(H));
    put(`${p}.self_attn.o_proj.weight`, [H, config.num_attention_heads * D], 1 / Math.sqrt(config.num_attention_heads * D));
    norm(`${p}.post_attention_layernorm.weight`);
    put(`${p}.mlp.gate_proj.weight`, [config.intermediate_size, H], 1 / Math.sqrt(H));
    put(`${p}.mlp.up_proj.weight`, [config.intermediate_size, H], 1 / Math.sqrt(H));
    put(`${p}.mlp.down_proj.weight`, [H, config.intermediate_size], 1 / Math.sqrt(config.intermediate_size));
  }
  norm('model.norm.weight');
  if (options.untied) put('lm_head.weight', [config.vocab_size, H], 1 / Math.sqrt(H));
  return {
    name: 'tiny-llama',
    config,
    weights,
    tokenizer: tok.tokenizer,
    tokenizerConfig: tok.tokenizerConfig,
    generationConfig: { bos_token_id: tok.bosId, eos_token_id: tok.eosId, do_sample: false },
    description: `tiny-llama: seeded random weights (seed ${seed}), byte-level tokenizer, ${config.num_hidden_layers} layers, hidden ${H}, ${config.num_attention_heads} query / ${config.num_key_value_heads} KV heads of ${D}, ${options.untied ? 'untied' : 'tied'} lm_head. Outputs are meaningless; the arithmetic is a real Llama.`,
  };
}
