/**
 * The checkpoints the precision benchmark writes: Llama-shaped, seeded random weights scaled like
 * an initialisation (1 / sqrt(fan-in), norms 1 ± 0.1), streamed tensor by tensor into BF16
 * safetensors as `models import` reads them, so an 8B shape never sits in memory.
 */
import { byteLevelTokenizer, type LlamaConfig, SeededRandom, type SourceTensor } from '@kvfold/model-zoo';

export type PrecisionShape = '123m' | '1b' | '8b';

const byte = byteLevelTokenizer();

function llama(c: Pick<LlamaConfig, 'vocab_size' | 'hidden_size' | 'intermediate_size' | 'num_hidden_layers' | 'num_attention_heads' | 'num_key_value_heads'>): LlamaConfig {
  return {
    ...c,
    head_dim: c.hidden_size / c.num_attention_heads,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 131072,
    tie_word_embeddings: false,
    bos_token_id: byte.bosId,
    eos_token_id: byte.eosId,
  };
}

export const PRECISION_SHAPES: Readonly<Record<PrecisionShape, LlamaConfig>> = {
  /** 123M parameters: hidden 1024, 8 layers, 16 / 4 heads, MLP 2816, a 32,000-token vocabulary. */
  '123m': llama({ vocab_size: 32000, hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 4 }),
  /** Llama-3.2-1B's widths. */
  '1b': llama({ vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8 }),
  /** Llama-3.1-8B's widths: 16 GB in BF16. */
  '8b': llama({ vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8 }),
};

/** Values per emitted chunk: a tensor is streamed, never held whole. */
const CHUNK = 1 << 20;

/** The tensors of a random checkpoint of `config`, each drawn from its own seeded stream as it is written. */
export function randomCheckpointTensors(config: LlamaConfig, seed: number): SourceTensor[] {
  const H = config.hidden_size;
  const D = config.head_dim;
  let next = seed;
  const normal = (name: string, shape: number[], std: number, mean = 0): SourceTensor => {
    const tensorSeed = next++;
    const n = shape.reduce((a, b) => a * b, 1);
    return {
      name,
      shape,
      values: (emit) => {
        const rng = new SeededRandom(tensorSeed);
        for (let done = 0; done < n; done += CHUNK) {
          const chunk = rng.normals(Math.min(CHUNK, n - done), std);
          if (mean !== 0) for (let i = 0; i < chunk.length; i++) chunk[i] = (chunk[i] as number) + mean;
          emit(chunk);
        }
      },
    };
  };
  const out = [normal('model.embed_tokens.weight', [config.vocab_size, H], 1)];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const q = config.num_attention_heads * D;
    const kv = config.num_key_value_heads * D;
    out.push(
      normal(`${p}.input_layernorm.weight`, [H], 0.1, 1),
      normal(`${p}.self_attn.q_proj.weight`, [q, H], 1 / Math.sqrt(H)),
      normal(`${p}.self_attn.k_proj.weight`, [kv, H], 1 / Math.sqrt(H)),
      normal(`${p}.self_attn.v_proj.weight`, [kv, H], 1 / Math.sqrt(H)),
      normal(`${p}.self_attn.o_proj.weight`, [H, q], 1 / Math.sqrt(q)),
      normal(`${p}.post_attention_layernorm.weight`, [H], 0.1, 1),
      normal(`${p}.mlp.gate_proj.weight`, [config.intermediate_size, H], 1 / Math.sqrt(H)),
      normal(`${p}.mlp.up_proj.weight`, [config.intermediate_size, H], 1 / Math.sqrt(H)),
      normal(`${p}.mlp.down_proj.weight`, [H, config.intermediate_size], 1 / Math.sqrt(config.intermediate_size)),
    );
  }
  out.push(normal('model.norm.weight', [H], 0.1, 1), normal('lm_head.weight', [config.vocab_size, H], 1 / Math.sqrt(H)));
  return out;
}

/** What a random checkpoint needs besides its tensors: the byte-level tokenizer (the bench feeds token ids). */
export function randomCheckpointContents(config: LlamaConfig, seed: number) {
  return {
    config,
    tensors: randomCheckpointTensors(config, seed),
    tokenizer: byte.tokenizer,
    tokenizerConfig: byte.tokenizerConfig,
    generationConfig: { bos_token_id: byte.bosId, eos_token_id: byte.eosId },
  };
}

/** Parameters of a shape (embedding, layers, lm_head). */
export function parameterCount(c: LlamaConfig): number {
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  const layer = 2 * c.hidden_size + c.hidden_size * (2 * q + 2 * kv) + 3 * c.hidden_size * c.intermediate_size;
  return 2 * c.vocab_size * c.hidden_size + c.num_hidden_layers * layer + c.hidden_size;
}
