/**
 * kv-heavy: tiny weights with Llama-3.1-8B's cache geometry.
 *
 * 32 layers x 8 KV heads x head_dim 128, like Llama-3.1-8B, so a token adds 256 KiB of float32 KV
 * (128 KiB in bf16 for the real model) and a 16K-token fold holds a 4 GiB cache: the memory and
 * copy costs of a real model's cache show on a CPU. Everything else is as small as the geometry
 * allows (8 query heads, hidden 64, a byte-level vocabulary), so the fold's time is attention over
 * that cache. Weights are seeded random: outputs are meaningless.
 */
import { byteLevelTokenizer } from './byte-tokenizer.ts';
import type { LlamaConfig, LlamaSpec } from './llama-spec.ts';
import { randomLlamaWeights } from './random-llama.ts';

export interface KvHeavyOptions {
  readonly seed?: number;
}

export function kvHeavySpec(options: KvHeavyOptions = {}): LlamaSpec {
  const seed = options.seed ?? 0;
  const tok = byteLevelTokenizer();
  const config: LlamaConfig = {
    vocab_size: tok.vocabSize,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 32,
    num_attention_heads: 8,
    num_key_value_heads: 8,
    head_dim: 128,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 131072,
    tie_word_embeddings: true,
    bos_token_id: tok.bosId,
    eos_token_id: tok.eosId,
  };
  return {
    name: 'kv-heavy',
    config,
    weights: randomLlamaWeights(config, seed, { embeddingStd: 0.25 }),
    tokenizer: tok.tokenizer,
    tokenizerConfig: tok.tokenizerConfig,
    generationConfig: { bos_token_id: tok.bosId, eos_token_id: tok.eosId, do_sample: false },
    description: `kv-heavy: Llama-3.1-8B's cache geometry (32 layers, 8 KV heads of 128: 256 KiB of float32 KV per token) with tiny seeded random weights (seed ${seed}): 8 query heads, hidden 64, byte-level tokenizer. Outputs are meaningless; it measures what a real model's cache costs.`,
  };
}
