/**
 * tiny-llama: a small Llama-architecture decoder with seeded random weights.
 *
 * It exists to prove the fold exact and to measure throughput: every part of the architecture is
 * present (RMSNorm, RoPE, grouped-query attention with 4 query heads over 2 KV heads, SwiGLU,
 * tied lm_head), and it is small enough that a 32K-token fold takes seconds on two cores.
 * Its outputs are meaningless; its arithmetic is real.
 */
import { byteLevelTokenizer } from './byte-tokenizer.ts';
import type { LlamaConfig, LlamaSpec } from './llama-spec.ts';
import { randomLlamaWeights } from './random-llama.ts';

export interface TinyLlamaOptions {
  readonly seed?: number;
  /** Untie lm_head from the embedding (exercises the other export shape). */
  readonly untied?: boolean;
  /**
   * Rows of the embedding and lm_head (default: the byte-level tokenizer's). A larger vocabulary
   * (a real model's 128,256, say) costs what it costs a real model per logit; the tokenizer still
   * writes only its own ids.
   */
  readonly vocabSize?: number;
}

export const DEFAULT_SEED = 0;

/** Embedding scale: with the tied lm_head, logits then have a standard deviation near 2, not 8. */
const EMBEDDING_STD = 0.25;

export function tinyLlamaSpec(options: TinyLlamaOptions = {}): LlamaSpec {
  const seed = options.seed ?? DEFAULT_SEED;
  const tok = byteLevelTokenizer();
  const config: LlamaConfig = {
    vocab_size: Math.max(tok.vocabSize, options.vocabSize ?? 0),
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
  const H = config.hidden_size;
  const D = config.head_dim;
  return {
    name: 'tiny-llama',
    config,
    weights: randomLlamaWeights(config, seed, { embeddingStd: EMBEDDING_STD }),
    tokenizer: tok.tokenizer,
    tokenizerConfig: tok.tokenizerConfig,
    generationConfig: { bos_token_id: tok.bosId, eos_token_id: tok.eosId, do_sample: false },
    description: `tiny-llama: seeded random weights (seed ${seed}), byte-level tokenizer, ${config.vocab_size} vocabulary rows, ${config.num_hidden_layers} layers, hidden ${H}, ${config.num_attention_heads} query / ${config.num_key_value_heads} KV heads of ${D}, ${options.untied ? 'untied' : 'tied'} lm_head. Outputs are meaningless; the arithmetic is a real Llama.`,
  };
}
