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
 * Attention is causal over cache indices (query i sees cache rows 0..past+i) and masked by
 * attention_mask; RoPE angles come from position_ids, or, in an export without them, from the
 * cache index (past + i). Grouped-query attention never copies K/V: queries are regrouped as
 * [batch, kvHeads, groups, seq, headDim] and broadcast against [batch, kvHeads, 1, T, headDim].
 */
import { DataType, GraphBuilder, type SerializedModel, type SerializeOptions } from './onnx-graph.ts';
import type { LlamaConfig, LlamaWeights, WeightTensor } from './llama-spec.ts';

/** Opset 17: ReduceMean still takes `axes` as an attribute; every op used here is stable there. */
export const OPSET = 17;

/** Score for masked positions: float32's lowest finite value, as transformers uses. */
const MASKED_SCORE = -3.4028234663852886e38;

export interface LlamaGraphOptions {
  /** Whether the graph takes `position_ids` (most exports) or derives positions from the cache length. */
  readonly positionIds: boolean;
  /**
   * dtype of past_key_values / present (default float32). With float16 the cache is stored in half
   * precision, as fp16 exports do; attention still computes in float32 on the rounded keys/values,
   * in the single pass and the fold alike.
   */
  readonly kvDtype?: 'float32' | 'float16';
}

/** Builds the decoder graph for a config and its weights. */
export function buildLlamaGraph(
  config: LlamaConfig,
  weights: LlamaWeights,
  options: LlamaGraphOptions,
  serialize: SerializeOptions,
): SerializedModel {
  const c = config;
  const D = c.head_dim;
  const groups = c.num_attention_heads / c.num_key_value_heads;
  if (!Number.isInteger(groups)) {
    throw new RangeError(`num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${c.num_key_value_heads}`);
  }
  const g = new GraphBuilder('llama_decoder');
  const w = (name: string): WeightTensor => {
    const t = weights.get(name);
    if (!t) throw new Error(`weights lack ${name}`);
    return t;
  };
  /** A Linear weight [out, in] stored transposed as a MatMul initializer [in, out]. */
  const linear = (name: string): string => {
    const t = w(name);
    return g.float(name, [t.shape[1] as number, t.shape[0] as number], transpose(t));
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
    key: g.input({ name: `past_key_values.${i}.key`, elemType: kvType, shape: [B, c.num_key_value_heads, 'past_sequence_length', D] }),
    value: g.input({ name: `past_key_values.${i}.value`, elemType: kvType, shape: [B, c.num_key_value_heads, 'past_sequence_length', D] }),
  }));
  /** To the cache's dtype and back (identity for float32). */
  const toKv = (x: string) => (kvType === DataType.FLOAT ? x : g.node('Cast', [x], { to: kvType }));
  const fromKv = (x: string) => (kvType === DataType.FLOAT ? x : g.node('Cast', [x], { to: DataType.FLOAT }));

  // --- lengths and masks -------------------------------------------------------------------
  const zero = g.ints([0], true);
  const one = g.ints([1], true);
  const pastLen = g.node('Gather', [g.node('Shape', [past[0]?.key ?? '']), g.ints([2], true)], { axis: 0 }); // scalar
  const seqLen = g.node('Gather', [g.node('Shape', [inputIds]), one], { axis: 0 }); // scalar
  const totalLen = g.node('Add', [pastLen, seqLen]);
  const queryIndex = g.node('Range', [pastLen, totalLen, one]); // [S] cache index of each query
  const keyIndex = g.node('Range', [zero, totalLen, one]); // [T]
  const causal = g.node('LessOrEqual', [
    g.node('Unsqueeze', [keyIndex, g.ints([0])]), // [1, T]
    g.node('Unsqueeze', [queryIndex, g.ints([1])]), // [S, 1]
  ]); // [S, T]
  const padding = g.node('Unsqueeze', [g.node('Cast', [attentionMask], { to: DataType.BOOL }), g.ints([1, 2, 3])]); // [B,1,1,1,T]
  const allowed = g.node('And', [causal, padding]); // [B, 1, 1, S, T]
  const maskedScore = g.scalar(MASKED_SCORE);

  // --- rotary embedding: cos/sin [B, 1, S, D] ----------------------------------------------
  const positions = positionInput ?? g.node('Unsqueeze', [queryIndex, g.ints([0])]); // [B|1, S]
  const invFreq = g.float('rope.inv_freq', [1, 1, D / 2], ropeInverseFrequencies(c.rope_theta, D));
  const freqs = g.node('Mul', [g.node('Unsqueeze', [g.node('Cast', [positions], { to: DataType.FLOAT }), g.ints([2])]), invFreq]); // [B, S, D/2]
  const angles = g.node('Unsqueeze', [g.node('Concat', [freqs, freqs], { axis: -1 }), g.ints([1])]); // [B, 1, S, D]
  const cos = g.node('Cos', [angles]);
  const sin = g.node('Sin', [angles]);
  const half = g.ints([D / 2]);
  const rope = (x: string): string => {
    // x: [B, heads, S, D] -> x * cos + rotate_half(x) * sin
    const x1 = g.node('Slice', [x, g.ints([0]), half, g.ints([-1])]);
    const x2 = g.node('Slice', [x, half, g.ints([D]), g.ints([-1])]);
    const rotated = g.node('Concat', [g.node('Neg', [x2]), x1], { axis: -1 });
    return g.node('Add', [g.node('Mul', [x, cos]), g.node('Mul', [rotated, sin])]);
  };

  const eps = g.scalar(c.rms_norm_eps);
  const rmsNorm = (x: string, weight: string): string => {
    const meanSquare = g.node('ReduceMean', [g.node('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    return g.node('Mul', [g.node('Div', [x, g.node('Sqrt', [g.node('Add', [meanSquare, eps])])]), weight]);
  };
  const scale = g.scalar(1 / Math.sqrt(D));
  const headsShape = (heads: number) => g.ints([0, 0, heads, D]); // [B, S, heads*D] -> [B, S, heads, D]

  // --- decoder layers -------------------------------------------------------------------------
  let h = g.node('Gather', [plain('model.embed_tokens.weight'), inputIds], { axis: 0 }); // [B, S, hidden]
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const layerPast = past[i] as { key: string; value: string };
    const x = rmsNorm(h, plain(`${p}.input_layernorm.weight`));
    const project = (name: string, heads: number) =>
      g.node('Transpose', [g.node('Reshape', [g.node('MatMul', [x, linear(`${p}.self_attn.${name}.weight`)]), headsShape(heads)])], {
        perm: [0, 2, 1, 3],
      }); // [B, heads, S, D]
    const q = rope(project('q_proj', c.num_attention_heads));
    const k = rope(project('k_proj', c.num_key_value_heads));
    const v = project('v_proj', c.num_key_value_heads);
    const presentK = g.node('Concat', [layerPast.key, toKv(k)], { axis: 2 }, `present.${i}.key.out`); // [B, kvH, T, D]
    const presentV = g.node('Concat', [layerPast.value, toKv(v)], { axis: 2 }, `present.${i}.value.out`);
    g.output({ name: `present.${i}.key`, elemType: kvType, shape: [B, c.num_key_value_heads, 'total_sequence_length', D] }, presentK);
    g.output({ name: `present.${i}.value`, elemType: kvType, shape: [B, c.num_key_value_heads, 'total_sequence_length', D] }, presentV);

    const q5 = g.node('Reshape', [q, g.ints([0, c.num_key_value_heads, groups, -1, D])]); // [B, kvH, G, S, D]
    const k5 = g.node('Unsqueeze', [fromKv(presentK), g.ints([2])]); // [B, kvH, 1, T, D]
    const v5 = g.node('Unsqueeze', [fromKv(presentV), g.ints([2])]); // [B, kvH, 1, T, D]
    const scores = g.node('Mul', [g.node('MatMul', [q5, g.node('Transpose', [k5], { perm: [0, 1, 2, 4, 3] })]), scale]); // [B, kvH, G, S, T]
    const probs = g.node('Softmax', [g.node('Where', [allowed, scores, maskedScore])], { axis: -1 });
    const attn = g.node('MatMul', [probs, v5]); // [B, kvH, G, S, D]
    const merged = g.node('Reshape', [
      g.node('Transpose', [g.node('Reshape', [attn, g.ints([0, c.num_attention_heads, -1, D])])], { perm: [0, 2, 1, 3] }),
      g.ints([0, 0, c.num_attention_heads * D]),
    ]); // [B, S, heads*D]
    h = g.node('Add', [h, g.node('MatMul', [merged, linear(`${p}.self_attn.o_proj.weight`)])]);

    const y = rmsNorm(h, plain(`${p}.post_attention_layernorm.weight`));
    const gate = g.node('MatMul', [y, linear(`${p}.mlp.gate_proj.weight`)]);
    const up = g.node('MatMul', [y, linear(`${p}.mlp.up_proj.weight`)]);
    const act = g.node('Mul', [g.node('Mul', [gate, g.node('Sigmoid', [gate])]), up]);
    h = g.node('Add', [h, g.node('MatMul', [act, linear(`${p}.mlp.down_proj.weight`)])]);
  }

  const final = rmsNorm(h, plain('model.norm.weight'));
  const logits = c.tie_word_embeddings
    ? g.node('Reshape', [
        g.node('Gemm', [g.node('Reshape', [final, g.ints([-1, c.hidden_size])]), 'model.embed_tokens.weight'], { transB: 1 }),
        g.node('Concat', [g.node('Shape', [inputIds]), g.ints([c.vocab_size])], { axis: 0 }),
      ])
    : g.node('MatMul', [final, linear('lm_head.weight')]);
  g.output({ name: 'logits', elemType: DataType.FLOAT, shape: [B, 'sequence_length', c.vocab_size] }, logits);
  return g.serialize(OPSET, serialize);
}

/** RoPE inverse frequencies theta^(-2j/D), j in [0, D/2), computed in float64 then rounded to float32. */
export function ropeInverseFrequencies(theta: number, headDim: number): Float32Array {
  return Float32Array.from({ length: headDim / 2 }, (_, j) => theta ** ((-2 * j) / headDim));
}

/** [rows, cols] -> [cols, rows]. */
function transpose(t: WeightTensor): Float32Array {
  const [rows, cols] = t.shape as [number, number];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < cols; col++) out[col * rows + r] = t.data[r * cols + col] as number;
  }
  return out;
}
