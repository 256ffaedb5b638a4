/**
 * Seeded random weights for a Llama-architecture config: every weight drawn from a normal
 * distribution scaled like a trained model's initialisation (1 / sqrt(fan-in) for projections,
 * 1 ± 0.1 for norms), in a fixed order, so the same seed gives byte-identical weights everywhere.
 * tiny-llama and kv-heavy are built this way; their outputs are meaningless, their arithmetic real.
 */
import type { LlamaConfig, WeightTensor } from './llama-spec.ts';
import { SeededRandom } from './rng.ts';

export interface RandomWeightsOptions {
  /** Standard deviation of the embedding (with a tied lm_head it sets the logits' spread). */
  readonly embeddingStd: number;
}

export function randomLlamaWeights(config: LlamaConfig, seed: number, options: RandomWeightsOptions): Map<string, WeightTensor> {
  const rng = new SeededRandom(seed);
  const weights = new Map<string, WeightTensor>();
  const H = config.hidden_size;
  const D = config.head_dim;
  const put = (name: string, shape: number[], std: number) => {
    weights.set(name, { shape, data: rng.normals(shape.reduce((a, b) => a * b, 1), std) });
  };
  const norm = (name: string) => {
    weights.set(name, { shape: [H], data: rng.normals(H, 0.1).map((x) => 1 + x) });
  };
  put('model.embed_tokens.weight', [config.vocab_size, H], options.embeddingStd);
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
  if (!config.tie_word_embeddings) put('lm_head.weight', [config.vocab_size, H], 1 / Math.sqrt(H));
  return weights;
}
