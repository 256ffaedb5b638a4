/** Small Llama shapes for the peer benchmark's tests: every width a multiple of ggml's 32-value block. */
import type { LlamaConfig } from '@kvfold/model-zoo';

/** 2 layers, 4 query / 2 KV heads, the byte-level tokenizer's BOS 256 and EOS 257; `widths` sets the rest. */
export function smallLlama(widths: Pick<LlamaConfig, 'vocab_size' | 'hidden_size' | 'intermediate_size'>, more: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    ...widths,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: widths.hidden_size / 4,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 4096,
    tie_word_embeddings: false,
    bos_token_id: 256,
    eos_token_id: 257,
    ...more,
  };
}
