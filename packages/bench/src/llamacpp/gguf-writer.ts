/**
 * A Hugging Face Llama checkpoint (as `models import` reads it) written as a GGUF file for
 * llama.cpp, architecture `llama`, so the CPU peer runs the very weights our engine imports:
 *
 *   token_embd [H, V]  blk.N.attn_norm [H]  blk.N.attn_q [H, Hq]  blk.N.attn_k/v [H, Hkv]
 *   blk.N.attn_output [Hq, H]  blk.N.ffn_norm [H]  blk.N.ffn_gate/up [H, F]  blk.N.ffn_down [F, H]
 *   output_norm [H]  output [H, V] (absent when tied)  rope_freqs [D/2] (llama3 RoPE scaling only)
 *
 * (dims innermost first, as GGUF lists them). Norms and rope_freqs stay F32; every matrix takes the
 * chosen type (F32, Q8_0 or Q4_0), the embedding and lm_head included, as our int8/int4 imports
 * quantize them too. Q and K rows are permuted from Hugging Face's rotate-half RoPE layout to
 * llama.cpp's interleaved pairs, as llama.cpp's convert_hf_to_gguf.py does for Llama.
 *
 * The vocabulary is a stand-in: the benchmark feeds token ids, so the file carries vocab_size
 * SentencePiece-typed entries (the byte tokens llama.cpp looks up, BOS/EOS at the checkpoint's ids,
 * and placeholders), not the checkpoint's tokenizer. Text through this file would not tokenize.
 */
import { basename } from 'node:path';
import { ropeFrequencies } from '@kvfold/fold-core';
import { type Checkpoint, type LlamaConfig, openCheckpoint } from '@kvfold/model-zoo';
import { BLOCK_VALUES, type GgmlType } from './ggml-blocks.ts';
import { GGUF_ALIGNMENT, type GgufTensor, type GgufValue, type WrittenGguf, writeGguf } from './gguf-file.ts';

/** general.file_type (llama_ftype) of a file whose matrices are all of one type. */
export const GGUF_FILE_TYPES: Readonly<Record<GgmlType, number>> = { F32: 0, Q4_0: 2, Q8_0: 7 };
/** GGML_QNT_VERSION: the block formats' version, required once any tensor is quantized. */
const QUANTIZATION_VERSION = 2;

/** llama_token_type values (llama.h) of the stand-in vocabulary. */
const TOKEN_TYPE = { normal: 1, control: 3, byte: 6 } as const;

export interface LlamaGguf extends WrittenGguf {
  readonly path: string;
  readonly type: GgmlType;
  readonly tensors: number;
  readonly config: LlamaConfig;
}

/** Writes the checkpoint folder `checkpointDir` as a GGUF file at `out`, matrices at `type`, tensor by tensor. */
export function writeLlamaGguf(checkpointDir: string, out: string, type: GgmlType): LlamaGguf {
  const checkpoint = openCheckpoint(checkpointDir);
  try {
    const c = checkpoint.arch.config;
    refuseUnsupported(checkpoint, type);
    const tensors = llamaTensors(checkpoint, type);
    const written = writeGguf(out, llamaMetadata(c, type, basename(checkpoint.dir)), tensors);
    return { ...written, path: out, type, tensors: tensors.length, config: c };
  } finally {
    checkpoint.close();
  }
}

function refuseUnsupported(checkpoint: Checkpoint, type: GgmlType): void {
  const { arch, dir } = checkpoint;
  if (arch.family === 'qwen2' || arch.biases.length > 0) {
    throw new RangeError(`checkpoint ${dir} is a ${arch.architecture}${arch.biases.length ? ' with biases' : ''}; the GGUF writer writes llama.cpp's llama architecture (Llama, Mistral without biases)`);
  }
  const c = arch.config;
  if (type !== 'F32') {
    const inner = { hidden_size: c.hidden_size, intermediate_size: c.intermediate_size, 'num_attention_heads x head_dim': c.num_attention_heads * c.head_dim };
    const odd = Object.entries(inner).filter(([, n]) => n % BLOCK_VALUES !== 0);
    if (odd.length) throw new RangeError(`checkpoint ${dir}: ${odd.map(([k, n]) => `${k} ${n}`).join(', ')} is not a multiple of ${BLOCK_VALUES}, the ${type} block: write it as F32`);
  }
}

/** The metadata llama.cpp reads for a `llama` model, with the types its loader checks. */
export function llamaMetadata(c: LlamaConfig, type: GgmlType, name: string): [string, GgufValue][] {
  const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
  const f32 = (value: number): GgufValue => ({ type: 'float32', value });
  const vocab = standInVocabulary(c);
  return [
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: name }],
    ['general.alignment', u32(GGUF_ALIGNMENT)],
    ['general.file_type', u32(GGUF_FILE_TYPES[type])],
    ...(type === 'F32' ? [] : [['general.quantization_version', u32(QUANTIZATION_VERSION)] as [string, GgufValue]]),
    ...Object.entries(llamaCounts(c)).map(([key, n]): [string, GgufValue] => [`llama.${key}`, u32(n)]),
    ['llama.attention.layer_norm_rms_epsilon', f32(c.rms_norm_eps)],
    ['llama.rope.freq_base', f32(c.rope_theta)],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', element: 'string', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'array', element: 'float32', value: new Float32Array(c.vocab_size) }],
    ['tokenizer.ggml.token_type', { type: 'array', element: 'int32', value: vocab.types }],
    ...(vocab.bos !== null ? [['tokenizer.ggml.bos_token_id', u32(vocab.bos)] as [string, GgufValue]] : []),
    ...(vocab.eos !== null ? [['tokenizer.ggml.eos_token_id', u32(vocab.eos)] as [string, GgufValue]] : []),
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
}

/** The llama.* counts, each a uint32: llama.cpp's loader refuses a key of another type (the spec's convention is uint64). */
function llamaCounts(c: LlamaConfig): Record<string, number> {
  return {
    context_length: c.max_position_embeddings,
    embedding_length: c.hidden_size,
    block_count: c.num_hidden_layers,
    feed_forward_length: c.intermediate_size,
    'attention.head_count': c.num_attention_heads,
    'attention.head_count_kv': c.num_key_value_heads,
    'attention.key_length': c.head_dim,
    'attention.value_length': c.head_dim,
    'rope.dimension_count': c.head_dim,
    vocab_size: c.vocab_size,
  };
}

/**
 * vocab_size distinct entries: BOS "<s>" and EOS "</s>" (control) at the checkpoint's ids, the 256
 * byte tokens "<0x00>".."<0xFF>" on the first ids left (llama.cpp looks up "<0x0A>" for newline),
 * and "<kvfold_i>" placeholders for the rest.
 */
export function standInVocabulary(c: LlamaConfig): { tokens: string[]; types: Int32Array; bos: number | null; eos: number | null } {
  const inRange = (id: unknown) => (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < c.vocab_size ? id : null);
  const bos = inRange(c.bos_token_id);
  const eos = inRange(Array.isArray(c.eos_token_id) ? c.eos_token_id[0] : c.eos_token_id);
  const tokens = Array.from({ length: c.vocab_size }, (_, i) => `<kvfold_${i}>`);
  const types = new Int32Array(c.vocab_size).fill(TOKEN_TYPE.normal);
  let byte = 0;
  for (let id = 0; id < c.vocab_size && byte < 256; id++) {
    if (id === bos || id === eos) continue;
    tokens[id] = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
    types[id] = TOKEN_TYPE.byte;
    byte++;
  }
  if (bos !== null) [tokens[bos], types[bos]] = ['<s>', TOKEN_TYPE.control];
  if (eos !== null && eos !== bos) [tokens[eos], types[eos]] = ['</s>', TOKEN_TYPE.control];
  return { tokens, types, bos, eos };
}

function llamaTensors(checkpoint: Checkpoint, type: GgmlType): GgufTensor[] {
  const c = checkpoint.arch.config;
  const D = c.head_dim;
  // One float32 buffer, sized to the largest tensor, reused from tensor to tensor.
  let buffer: Float32Array = new Float32Array(0);
  const read = (name: string) => {
    const t = checkpoint.tensors.get(name);
    if (!t) throw new RangeError(`checkpoint ${checkpoint.dir} has no tensor ${name}`);
    const data = t.file.readFloat32(name, buffer);
    if (data.buffer !== buffer.buffer) buffer = data;
    return data;
  };
  /** A Hugging Face [out, in] weight (or a [n] vector) under its GGUF name, dims reversed. */
  const tensor = (gguf: string, hf: string, shape: readonly number[], t: GgmlType, permuteHeads = 0): GgufTensor => ({
    name: gguf,
    dims: [...shape].reverse(),
    type: t,
    values: () => {
      const data = read(hf);
      if (permuteHeads) permuteRopeRows(data, permuteHeads, D, shape[1] as number);
      return data;
    },
  });
  const H = c.hidden_size;
  const q = c.num_attention_heads * D;
  const kv = c.num_key_value_heads * D;
  const out: GgufTensor[] = [tensor('token_embd.weight', 'model.embed_tokens.weight', [c.vocab_size, H], type)];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const b = `blk.${i}`;
    out.push(
      tensor(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`, [H], 'F32'),
      tensor(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`, [q, H], type, c.num_attention_heads),
      tensor(`${b}.attn_k.weight`, `${p}.self_attn.k_proj.weight`, [kv, H], type, c.num_key_value_heads),
      tensor(`${b}.attn_v.weight`, `${p}.self_attn.v_proj.weight`, [kv, H], type),
      tensor(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`, [H, q], type),
      tensor(`${b}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`, [H], 'F32'),
      tensor(`${b}.ffn_gate.weight`, `${p}.mlp.gate_proj.weight`, [c.intermediate_size, H], type),
      tensor(`${b}.ffn_up.weight`, `${p}.mlp.up_proj.weight`, [c.intermediate_size, H], type),
      tensor(`${b}.ffn_down.weight`, `${p}.mlp.down_proj.weight`, [H, c.intermediate_size], type),
    );
  }
  out.push(tensor('output_norm.weight', 'model.norm.weight', [H], 'F32'));
  // Tied: llama.cpp reads token_embd for the head when output.weight is absent.
  if (!c.tie_word_embeddings) out.push(tensor('output.weight', 'lm_head.weight', [c.vocab_size, H], type));
  if (c.rope_scaling) {
    // llama.cpp divides each RoPE frequency by its factor: plain / scaled.
    const plain = ropeFrequencies(c.rope_theta, D);
    const scaled = ropeFrequencies(c.rope_theta, D, c.rope_scaling);
    const factors = Float32Array.from(plain, (f, j) => f / (scaled[j] as number));
    out.push({ name: 'rope_freqs.weight', dims: [D / 2], type: 'F32', values: () => factors });
  }
  return out;
}

/**
 * Reorders a Q or K projection's rows [heads · D, cols], in place, from the rotate-half layout
 * (a head's rows: the first halves of its D/2 pairs, then the second halves) to interleaved pairs:
 * new row h·D + 2j + s is old row h·D + s·D/2 + j, for j < D/2 and s in {0, 1}.
 */
export function permuteRopeRows(data: Float32Array, heads: number, headDim: number, cols: number): void {
  const half = headDim / 2;
  const head = new Float32Array(headDim * cols); // [headDim, cols], one head's rows
  for (let h = 0; h < heads; h++) {
    const base = h * headDim * cols;
    head.set(data.subarray(base, base + headDim * cols));
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const from = (s * half + j) * cols;
        data.set(head.subarray(from, from + cols), base + (2 * j + s) * cols);
      }
    }
  }
}
