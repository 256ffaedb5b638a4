/**
 * The Llama decoder as an ONNX graph with the I/O of an optimum `text-generation-with-past` export:
 *
 *   inputs   input_ids                    int64 [batch, seq]
 *            attention_mask               int64 [batch, past + seq]
 *            position_ids                 int64 [batch, seq]          (optional, see `positionIds`)
 *            past_key_values.{i}.key      float [batch, kvHeads, past, headDim]
 *            past_key_values.{i}.value    float [batch, kvHeads, past, headDim]
 *   outputs  logits                       float [batch, seq, vocab]
 *            present.{i}.key              float [batch, kvHeads, past + seq, headDim]
 *            present.{i}.value            float [batch, kvHeads, past + seq, headDim]
 *
 * Lengths come from attention_mask (its length is past + seq), never from the past tensors, so a
 * runtime may pass a past buffer with spare rows beyond the valid ones (see `attention`). RoPE
 * angles come from position_ids, or, in an export without them, from the cache index (past + i).
 * Outputs are written by the nodes that compute them: no Identity copies.
 *
 * Two ways to compute attention, both exact:
 *
 *   gqa     onnxruntime's GroupQueryAttention (com.microsoft), as the onnxruntime-genai model
 *           builder writes it: one fused op per layer that appends the chunk's keys and values to the
 *           cache and attends causally, with the scores never leaving the kernel. Its past may be a
 *           buffer longer than the valid rows (seqlens from attention_mask). The kernel
 *           parallelises over heads.
 *   matmul  the plain optimum form: present = Concat(past, new), MatMul/Softmax attention with an
 *           additive mask built once per step and shared by every layer. Its MatMuls parallelise
 *           within a head, which is what a single-head model needs; it also serves float16 caches.
 */
import { ExternalData } from './external-data.ts';
import type { LlamaConfig, WeightLookup, WeightTensor } from './llama-spec.ts';
import { DataType, GraphBuilder, type SerializedModel, type SerializeOptions } from './onnx-graph.ts';
import { type RopeScaling, ropeFrequencies } from './rope.ts';
import { BlockQuantizer, DEFAULT_BLOCK_SIZE } from './quantize.ts';
import { WeightEncoder } from './weight-encoder.ts';

/** Opset 17: ReduceMean still takes `axes` as an attribute; every op used here is stable there. */
export const OPSET = 17;

/** Score for masked positions: float32's lowest finite value, as transformers uses. */
const MASKED_SCORE = -3.4028234663852886e38;

export type AttentionKind = 'gqa' | 'matmul';

export interface LlamaGraphOptions {
  /** Whether the graph takes `position_ids` (most exports) or derives positions from the cache length. */
  readonly positionIds: boolean;
  /**
   * dtype of past_key_values / present (default float32). With float16 the cache is stored in half
   * precision, as fp16 exports do; attention still computes in float32 on the rounded keys/values,
   * in the single pass and the fold alike (matmul attention only).
   */
  readonly kvDtype?: 'float32' | 'float16';
  /** How attention is computed (default: `defaultAttention`). */
  readonly attention?: AttentionKind;
  /**
   * How the projection, embedding and lm_head weights are stored (default float32); norms and
   * biases stay float32.
   *   float16     halves the file; each weight is Cast to float32 in the graph, so the arithmetic
   *               stays float32 (ONNX Runtime folds those Casts into float32 copies when the session loads)
   *   int8, int4  block-quantized (quantize.ts): every projection and lm_head a `MatMulNBits`, the
   *               embedding a `GatherBlockQuantized` (com.microsoft), as onnxruntime-genai's builder
   *               writes them; a tied lm_head reads the embedding's codes (one table for both)
   */
  readonly weightDtype?: WeightDtype;
  /** Weights per scale of int8/int4 (default DEFAULT_BLOCK_SIZE, 32). */
  readonly blockSize?: number;
  /**
   * MatMulNBits' `accuracy_level` for int8/int4 (default DEFAULT_ACCURACY_LEVEL): 0 computes in
   * float32 on the dequantized weights; 4 quantizes the activations to int8 per block and runs
   * the CPU's int8 kernels.
   */
  readonly accuracyLevel?: 0 | 1 | 2 | 3 | 4;
}

export type WeightDtype = 'float32' | 'float16' | 'int8' | 'int4';

/** MatMulNBits' accuracy_level when none is asked: see docs/models.md for what each costs. */
export const DEFAULT_ACCURACY_LEVEL = 4;

/**
 * gqa for models with several query heads; matmul for a single query head, where the fused
 * kernel would run on one core (it parallelises over heads) and for float16 caches (the fused op
 * takes query, keys and cache in one dtype).
 */
export function defaultAttention(config: LlamaConfig, kvDtype: 'float32' | 'float16' = 'float32'): AttentionKind {
  return config.num_attention_heads > 1 && kvDtype === 'float32' ? 'gqa' : 'matmul';
}

/**
 * Builds the decoder graph for a config and its weights. With `SerializeOptions` the external data
 * is returned in memory; with an `ExternalData` sink each weight is written to it as it is built
 * (and read from `weights` only then), so the builder holds one weight at a time.
 */
export function buildLlamaGraph(
  config: LlamaConfig,
  weights: WeightLookup,
  options: LlamaGraphOptions,
  output: SerializeOptions | ExternalData,
): SerializedModel {
  const c = config;
  const D = c.head_dim;
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const groups = H / KV;
  if (!Number.isInteger(groups)) {
    throw new RangeError(`num_attention_heads ${H} is not a multiple of num_key_value_heads ${KV}`);
  }
  const attention = options.attention ?? defaultAttention(c, options.kvDtype);
  if (attention === 'gqa' && options.kvDtype === 'float16') {
    throw new RangeError('GroupQueryAttention takes query, keys and cache in one dtype: build float16 caches with matmul attention');
  }
  const streaming = output instanceof ExternalData;
  const g = new GraphBuilder('llama_decoder', streaming ? { external: output } : {});
  const half = options.weightDtype === 'float16';
  const bits = options.weightDtype === 'int4' ? 4 : options.weightDtype === 'int8' ? 8 : null;
  const w = (name: string): WeightTensor => {
    const t = weights.get(name);
    if (!t) throw new Error(`weights lack ${name}`);
    return t;
  };
  // Streaming, each weight is written before the next is read, so scratch buffers can be reused.
  const encoder = new WeightEncoder(half ? 'float16' : 'float32', streaming);
  /** A large weight as an initializer (transposed when asked), in the stored dtype; returns the float32 value's name. */
  const stored = (name: string, t: WeightTensor, transposed: boolean): string => {
    const e = encoder.encode(name, t, transposed);
    g.tensor(name, e.dims, e.dataType, e.bytes);
    return half ? g.node('Cast', [name], { to: DataType.FLOAT }) : name;
  };
  // Quantized, each weight's codes are written before the next is quantized: one scratch serves all.
  const quantizer = bits ? new BlockQuantizer(bits, options.blockSize ?? DEFAULT_BLOCK_SIZE, streaming) : null;
  /** A [N, K] weight's codes [N, kBlocks, blob] as one initializer, with MatMulNBits' scales [N * kBlocks] unless `gatherOnly`. */
  const quantized = (name: string, t: WeightTensor, gatherOnly = false) => {
    const q = (quantizer as BlockQuantizer).quantize(name, t);
    g.tensor(`${name}.q${bits}`, [q.n, q.kBlocks, q.blobBytes], DataType.UINT8, q.packed);
    if (!gatherOnly) g.float(`${name}.scales`, [q.n * q.kBlocks], q.scales);
    return { codes: `${name}.q${bits}`, scales: `${name}.scales`, scaleValues: q.scales, n: q.n, k: q.k, kBlocks: q.kBlocks };
  };
  /** x · dequant(W)ᵀ over a quantized [N, K] weight. */
  const matMulNBits = (x: string, q: ReturnType<typeof quantized>, outName?: string): string =>
    g.node(
      'MatMulNBits',
      [x, q.codes, q.scales],
      { K: q.k, N: q.n, bits: bits as number, block_size: (quantizer as BlockQuantizer).blockSize, accuracy_level: options.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL },
      outName,
      'com.microsoft',
    );
  /** x · Wᵀ (+ b when the checkpoint has a bias): a Linear weight [out, in] as MatMul's [in, out], or quantized as it is. */
  const linear = (x: string, name: string): string => {
    const weight = `${name}.weight`;
    const y = quantizer ? matMulNBits(x, quantized(weight, w(weight))) : g.node('MatMul', [x, stored(weight, w(weight), true)]);
    const bias = weights.get(`${name}.bias`);
    return bias ? g.node('Add', [y, g.float(`${name}.bias`, bias.shape, bias.data)]) : y;
  };
  const plain = (name: string): string => {
    const t = w(name);
    return g.float(name, t.shape, t.data);
  };

  const B = 'batch_size';
  const inputIds = g.input({ name: 'input_ids', elemType: DataType.INT64, shape: [B, 'sequence_length'] });
  const attentionMask = g.input({ name: 'attention_mask', elemType: DataType.INT64, shape: [B, 'total_sequence_length'] });
  const positionInput = options.positionIds
    ? g.input({ name: 'position_ids', elemType: DataType.INT64, shape: [B, 'sequence_length'] })
    : null;
  const kvType = options.kvDtype === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const past = Array.from({ length: c.num_hidden_layers }, (_, i) => ({
    key: g.input({ name: `past_key_values.${i}.key`, elemType: kvType, shape: [B, KV, 'past_sequence_length', D] }),
    value: g.input({ name: `past_key_values.${i}.value`, elemType: kvType, shape: [B, KV, 'past_sequence_length', D] }),
  }));
  const presentShape = [B, KV, 'total_sequence_length', D];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    g.output({ name: `present.${i}.key`, elemType: kvType, shape: presentShape });
    g.output({ name: `present.${i}.value`, elemType: kvType, shape: presentShape });
  }
  /** To the cache's dtype and back (identity for float32). */
  const toKv = (x: string) => (kvType === DataType.FLOAT ? x : g.node('Cast', [x], { to: kvType }));
  const fromKv = (x: string) => (kvType === DataType.FLOAT ? x : g.node('Cast', [x], { to: DataType.FLOAT }));

  // --- lengths, from attention_mask [B, past + seq] ----------------------------------------------
  const one = g.ints([1], true);
  const seqLen = g.node('Gather', [g.node('Shape', [inputIds]), one], { axis: 0 }); // scalar
  const totalLen = g.node('Gather', [g.node('Shape', [attentionMask]), one], { axis: 0 }); // scalar
  const pastLen = g.node('Sub', [totalLen, seqLen]); // scalar

  // --- rotary embedding: cos/sin [B, S, 1, D], applied in [B, S, heads, D] ---------------------------
  // Without position_ids, each query's position is its cache index: past + i.
  const positions = positionInput ?? g.node('Unsqueeze', [g.node('Range', [pastLen, totalLen, one]), g.ints([0])]); // [B|1, S]
  const invFreq = g.float('rope.inv_freq', [1, 1, D / 2], ropeInverseFrequencies(c.rope_theta, D, c.rope_scaling ?? null));
  const freqs = g.node('Mul', [g.node('Unsqueeze', [g.node('Cast', [positions], { to: DataType.FLOAT }), g.ints([2])]), invFreq]); // [B, S, D/2]
  const angles = g.node('Unsqueeze', [g.node('Concat', [freqs, freqs], { axis: -1 }), g.ints([2])]); // [B, S, 1, D]
  const cos = g.node('Cos', [angles]);
  const sin = g.node('Sin', [angles]);
  const halfDim = g.ints([D / 2]);
  /** [B, S, heads * D] -> RoPE (HF rotate_half) -> [B, S, heads, D] */
  const rope = (x: string, heads: number): string => {
    const x4 = g.node('Reshape', [x, g.ints([0, 0, heads, D])]);
    const x1 = g.node('Slice', [x4, g.ints([0]), halfDim, g.ints([-1])]);
    const x2 = g.node('Slice', [x4, halfDim, g.ints([D]), g.ints([-1])]);
    const rotated = g.node('Concat', [g.node('Neg', [x2]), x1], { axis: -1 });
    return g.node('Add', [g.node('Mul', [x4, cos]), g.node('Mul', [rotated, sin])]);
  };
  const flatHeads = (x: string, heads: number) => g.node('Reshape', [x, g.ints([0, 0, heads * D])]); // [B, S, heads, D] -> [B, S, heads*D]
  const headsFirst = (x: string) => g.node('Transpose', [x], { perm: [0, 2, 1, 3] }); // [B, S, h, D] -> [B, h, S, D]

  const eps = g.scalar(c.rms_norm_eps);
  const rmsNorm = (x: string, weight: string): string => {
    const meanSquare = g.node('ReduceMean', [g.node('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    return g.node('Mul', [g.node('Div', [x, g.node('Sqrt', [g.node('Add', [meanSquare, eps])])]), weight]);
  };
  const scale = 1 / Math.sqrt(D);

  // --- attention, per kind ---------------------------------------------------------------------
  /** Returns [B, S, heads*D] for q [B, S, H*D] (not yet rotated), k [B, S, KV*D], v [B, S, KV*D]. */
  let attend: (i: number, q: string, k: string, v: string) => string;
  if (attention === 'gqa') {
    // seqlens_k = valid keys per batch row minus one; total_sequence_length = past + seq. Both
    // int32, from attention_mask, so past may have spare rows.
    const seqlensK = g.node('Cast', [g.node('Sub', [g.node('ReduceSum', [attentionMask, g.ints([1])], { keepdims: 0 }), g.ints([1])])], { to: DataType.INT32 }); // [B]
    const totalInt = g.node('Cast', [totalLen], { to: DataType.INT32 }); // scalar
    attend = (i, q, k, v) => {
      const layerPast = past[i] as { key: string; value: string };
      const [out] = g.nodeOutputs(
        'GroupQueryAttention',
        [flatHeads(rope(q, H), H), flatHeads(rope(k, KV), KV), v, layerPast.key, layerPast.value, seqlensK, totalInt],
        { num_heads: H, kv_num_heads: KV, scale: { float: scale } },
        [`attn_${i}`, `present.${i}.key`, `present.${i}.value`],
        'com.microsoft',
      );
      return out as string;
    };
  } else {
    // Additive mask [B, 1, 1, S, T], built once per step and shared by every layer: a key t is
    // hidden from query s when it comes later (causal) or attention_mask is 0 there. The causal
    // part is an S x S block padded with zeros for the past's columns (every query sees the whole
    // past), the padding part one row over T; each contributes half the lowest float, so a key
    // hidden both ways stays finite.
    const queries = g.node('Range', [g.ints([0], true), seqLen, one]); // [S]
    const later = g.node('Less', [g.node('Unsqueeze', [queries, g.ints([1])]), g.node('Unsqueeze', [queries, g.ints([0])])]); // [S, S]: key j after query i
    const block = g.node('Where', [later, g.scalar(MASKED_SCORE / 2), g.scalar(0)]); // [S, S]
    const pads = g.node('Concat', [g.ints([0]), g.node('Unsqueeze', [pastLen, g.ints([0])]), g.ints([0, 0])], { axis: 0 }); // [0, past, 0, 0]
    const causal = g.node('Pad', [block, pads]); // [S, T]
    const padding = g.node('Mul', [g.node('Sub', [g.node('Cast', [attentionMask], { to: DataType.FLOAT }), g.scalar(1)]), g.scalar(-MASKED_SCORE / 2)]); // [B, T]
    const mask = g.node('Add', [causal, g.node('Unsqueeze', [padding, g.ints([1, 2, 3])])]); // [B, 1, 1, S, T]
    const qScale = g.scalar(scale);
    attend = (i, q, k, v) => {
      const layerPast = past[i] as { key: string; value: string };
      // Queries regrouped [B, KV, G, S, D] broadcast against [B, KV, 1, T, D]: GQA without copying K/V.
      const q5 = g.node('Reshape', [headsFirst(g.node('Mul', [rope(q, H), qScale])), g.ints([0, KV, groups, -1, D])]);
      const presentK = g.node('Concat', [layerPast.key, toKv(headsFirst(rope(k, KV)))], { axis: 2 }, `present.${i}.key`); // [B, KV, T, D]
      const vHeads = headsFirst(g.node('Reshape', [v, g.ints([0, 0, KV, D])]));
      const presentV = g.node('Concat', [layerPast.value, toKv(vHeads)], { axis: 2 }, `present.${i}.value`);
      const k5 = g.node('Unsqueeze', [fromKv(presentK), g.ints([2])]); // [B, KV, 1, T, D]
      const v5 = g.node('Unsqueeze', [fromKv(presentV), g.ints([2])]); // [B, KV, 1, T, D]
      const scores = g.node('MatMul', [q5, g.node('Transpose', [k5], { perm: [0, 1, 2, 4, 3] })]); // [B, KV, G, S, T]
      const probs = g.node('Softmax', [g.node('Add', [scores, mask])], { axis: -1 });
      const out = g.node('MatMul', [probs, v5]); // [B, KV, G, S, D]
      return g.node('Reshape', [g.node('Transpose', [g.node('Reshape', [out, g.ints([0, H, -1, D])])], { perm: [0, 2, 1, 3] }), g.ints([0, 0, H * D])]);
    };
  }

  // --- decoder layers ---------------------------------------------------------------------------
  const embedName = 'model.embed_tokens.weight';
  let h: string; // [B, S, hidden]
  let table: ReturnType<typeof quantized> | null = null;
  if (quantizer) {
    // The codes [vocab, kBlocks, blob] gathered by row, each row's blocks dequantized: [B, S, kBlocks, blockSize].
    table = quantized(embedName, w(embedName), !c.tie_word_embeddings);
    // GatherBlockQuantized wants the scales as [vocab, kBlocks, 1] (MatMulNBits refuses that shape): a second, small copy.
    const scales = g.float(`${embedName}.gather_scales`, [table.n, table.kBlocks, 1], table.scaleValues);
    const zeroPoints = bits === 8 ? [g.tensor(`${embedName}.zero_points`, [table.n, table.kBlocks, 1], DataType.UINT8, new Uint8Array(table.n * table.kBlocks).fill(quantizer.zeroPoint))] : [];
    const blocks = g.node(
      'GatherBlockQuantized',
      [table.codes, inputIds, scales, ...zeroPoints],
      { gather_axis: 0, quantize_axis: 2, block_size: quantizer.blockSize, bits: bits as number },
      undefined,
      'com.microsoft',
    );
    const padded = table.kBlocks * quantizer.blockSize;
    h = g.node('Reshape', [blocks, g.ints([0, 0, padded])]);
    // A hidden size that is not a multiple of the block: the last block's padding goes.
    if (padded !== c.hidden_size) h = g.node('Slice', [h, g.ints([0]), g.ints([c.hidden_size]), g.ints([2])]);
  } else {
    const embedding = encoder.encode(embedName, w(embedName), false);
    g.tensor(embedName, embedding.dims, embedding.dataType, embedding.bytes);
    // In float16, rows are gathered, then Cast: the same values as casting the table, without it.
    const gathered = g.node('Gather', [embedName, inputIds], { axis: 0 });
    h = half ? g.node('Cast', [gathered], { to: DataType.FLOAT }) : gathered;
  }
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const x = rmsNorm(h, plain(`${p}.input_layernorm.weight`));
    const q = linear(x, `${p}.self_attn.q_proj`); // [B, S, H*D]
    const k = linear(x, `${p}.self_attn.k_proj`); // [B, S, KV*D]
    const v = linear(x, `${p}.self_attn.v_proj`); // [B, S, KV*D]
    h = g.node('Add', [h, linear(attend(i, q, k, v), `${p}.self_attn.o_proj`)]);

    const y = rmsNorm(h, plain(`${p}.post_attention_layernorm.weight`));
    const gate = linear(y, `${p}.mlp.gate_proj`);
    const up = linear(y, `${p}.mlp.up_proj`);
    const act = g.node('Mul', [g.node('Mul', [gate, g.node('Sigmoid', [gate])]), up]);
    h = g.node('Add', [h, linear(act, `${p}.mlp.down_proj`)]);
  }

  const final = rmsNorm(h, plain('model.norm.weight'));
  if (c.tie_word_embeddings && table) {
    // The embedding's codes are lm_head's too: [vocab, kBlocks, blob] is MatMulNBits' layout.
    matMulNBits(final, table, 'logits');
  } else if (c.tie_word_embeddings) {
    // logits = final · embeddingᵀ, reading the one embedding table (transB), [B, S, hidden] as it is.
    const embedding = half ? g.node('Cast', [embedName], { to: DataType.FLOAT }) : embedName;
    g.node('FusedMatMul', [final, embedding], { transB: 1, alpha: { float: 1 } }, 'logits', 'com.microsoft');
  } else if (quantizer) {
    matMulNBits(final, quantized('lm_head.weight', w('lm_head.weight')), 'logits');
  } else {
    g.node('MatMul', [final, stored('lm_head.weight', w('lm_head.weight'), true)], {}, 'logits');
  }
  g.output({ name: 'logits', elemType: DataType.FLOAT, shape: [B, 'sequence_length', c.vocab_size] });
  return streaming ? g.serialize(OPSET) : g.serialize(OPSET, output);
}

/**
 * RoPE inverse frequencies theta^(-2j/D), j in [0, D/2), scaled per `scaling` (rope.ts),
 * computed in float64 then rounded to float32.
 */
export function ropeInverseFrequencies(theta: number, headDim: number, scaling: RopeScaling | null = null): Float32Array {
  return Float32Array.from(ropeFrequencies(theta, headDim, scaling));
}
