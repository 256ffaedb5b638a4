/**
 * The recall model's weights, set by hand (see RECALL.md for the argument behind each one).
 *
 *   embed_tokens   BIAS = 1 and a one-hot of the token's class in the T block
 *   layer 0        previous-token head: q and k read only BIAS; RoPE's 16 fastest pairs make
 *                  q·k peak at offset 1; v copies T, o_proj writes it to the P block
 *   layer 1        induction head: q = code of the own token, k = code(previous) - code(own) on
 *                  slow pairs; v copies T, o_proj writes it to the O block
 *   MLPs           zero: they add nothing to the residual stream
 *   norms          constant weights that undo the known RMS, so each layer sees the stream itself
 *   lm_head        copied needle i -> logit of n_i; copied KEY or "other" -> logit of </s>;
 *                  every other token gets a constant negative logit through BIAS
 */
import type { LlamaWeights, WeightTensor } from '../llama-spec.ts';
import {
  EOS_ID,
  FIRST_NEEDLE_ID,
  HEAD_DIM,
  PREVIOUS_TOKEN_PAIRS,
  type RecallLayout,
  codeDimension,
  pairFrequency,
  tokenClass,
} from './layout.ts';

/**
 * Attention score (after the 1/sqrt(headDim) scaling) one previous-token pair adds at perfect
 * alignment. 16 pairs x 20 = 320 at offset 1; the nearest rival offsets score 1.570 x 20 = 31.4
 * less, so even 131071 rivals at that score hold 131071 * e^-31.4 = 3e-9 of the softmax mass.
 */
export const PREVIOUS_SCORE_PER_PAIR = 20;
/**
 * Induction-head score of a match at offset 0 (after scaling). A match keeps >= cos(0.1) of it at
 * any distance (39.8) and a non-match gets at most sin(0.1) of it (4.0): a margin of 35.8, so all
 * 131071 non-matches together hold < 131071 * e^-35.8 = 4e-11 of the mass.
 */
export const MATCH_SCORE = 40;
/** Logit of the copied needle; rivals sit near 0 and non-answer tokens at -20: p(answer) > 1 - 1e-6. */
export const LOGIT_SCALE = 20;
/** Llama's usual epsilon; the norm weights below include it, so it changes no result. */
export const RMS_NORM_EPS = 1e-5;
/** The MLPs are all zero; one unit keeps every tensor non-empty and costs nothing. */
export const MLP_WIDTH = 1;
/** Unit components in the residual stream before layer 0, layer 1 and the final norm. */
const UNITS_BEFORE_LAYER = [2, 3] as const;
const UNITS_BEFORE_HEAD = 4;

/** A zeroed [rows, cols] tensor with a setter. */
function matrix(rows: number, cols: number): { tensor: WeightTensor; set: (r: number, c: number, v: number) => void } {
  const data = new Float32Array(rows * cols);
  return {
    tensor: { shape: [rows, cols], data },
    set: (r, c, v) => {
      data[r * cols + c] = v;
    },
  };
}

/** A norm weight that maps a residual of `units` unit components (and zeros elsewhere) back onto itself. */
function normWeight(hidden: number, units: number): WeightTensor {
  return { shape: [hidden], data: new Float32Array(hidden).fill(Math.sqrt(units / hidden + RMS_NORM_EPS)) };
}

/** All weights of the recall model, by Hugging Face name, with HF [out, in] shapes. */
export function recallWeights(layout: RecallLayout): LlamaWeights {
  const H = layout.hidden;
  const D = HEAD_DIM;
  const M = layout.classes;
  const half = D / 2;
  /** Multiplying q by sqrt(D) cancels attention's 1/sqrt(D), so scores are the constants above. */
  const unscale = Math.sqrt(D);
  const weights = new Map<string, WeightTensor>();

  const embed = matrix(layout.vocabSize, H); // [vocab, hidden]
  for (let id = 0; id < layout.vocabSize; id++) {
    embed.set(id, layout.bias, 1);
    embed.set(id, layout.ownBlock + tokenClass(layout, id), 1);
  }
  weights.set('model.embed_tokens.weight', embed.tensor);

  // Layer 0: previous-token head. Pair j: k = (1, 0), q = s (cos w_j, -sin w_j); after RoPE at
  // query position p and key position p - d, q·k = s cos((d - 1) w_j), largest at d = 1.
  const q0 = matrix(D, H); // [heads * headDim, hidden]
  const k0 = matrix(D, H); // [kvHeads * headDim, hidden]
  for (let j = 0; j < PREVIOUS_TOKEN_PAIRS; j++) {
    const w = pairFrequency(j);
    q0.set(j, layout.bias, PREVIOUS_SCORE_PER_PAIR * unscale * Math.cos(w));
    q0.set(j + half, layout.bias, -PREVIOUS_SCORE_PER_PAIR * unscale * Math.sin(w));
    k0.set(j, layout.bias, 1);
  }
  // Layer 1: induction head. Code c lives in one half of one slow pair: q reads the own token's
  // class, k reads previous-token class minus own-token class.
  const q1 = matrix(D, H);
  const k1 = matrix(D, H);
  for (let c = 0; c < layout.codes; c++) {
    const dim = codeDimension(layout, c);
    q1.set(dim, layout.ownBlock + c, MATCH_SCORE * unscale);
    k1.set(dim, layout.previousBlock + c, 1);
    k1.set(dim, layout.ownBlock + c, -1);
  }
  const layers = [
    { q: q0, k: k0, writes: layout.previousBlock },
    { q: q1, k: k1, writes: layout.copiedBlock },
  ];
  layers.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    // Both heads move the own-token block: v = T (dims 0..M-1 of the head), o_proj writes it on.
    const v = matrix(D, H); // [kvHeads * headDim, hidden]
    const o = matrix(H, D); // [hidden, heads * headDim]
    for (let c = 0; c < M; c++) {
      v.set(c, layout.ownBlock + c, 1);
      o.set(layer.writes + c, c, 1);
    }
    weights.set(`${p}.input_layernorm.weight`, normWeight(H, UNITS_BEFORE_LAYER[i] as number));
    weights.set(`${p}.self_attn.q_proj.weight`, layer.q.tensor);
    weights.set(`${p}.self_attn.k_proj.weight`, layer.k.tensor);
    weights.set(`${p}.self_attn.v_proj.weight`, v.tensor);
    weights.set(`${p}.self_attn.o_proj.weight`, o.tensor);
    weights.set(`${p}.post_attention_layernorm.weight`, { shape: [H], data: new Float32Array(H).fill(1) });
    weights.set(`${p}.mlp.gate_proj.weight`, matrix(MLP_WIDTH, H).tensor); // [intermediate, hidden]
    weights.set(`${p}.mlp.up_proj.weight`, matrix(MLP_WIDTH, H).tensor); // [intermediate, hidden]
    weights.set(`${p}.mlp.down_proj.weight`, matrix(H, MLP_WIDTH).tensor); // [hidden, intermediate]
  });

  weights.set('model.norm.weight', normWeight(H, UNITS_BEFORE_HEAD));
  const head = matrix(layout.vocabSize, H); // [vocab, hidden]
  for (let id = 0; id < layout.vocabSize; id++) {
    const needle = id - FIRST_NEEDLE_ID;
    if (needle >= 0 && needle < layout.needleTokens) {
      head.set(id, layout.copiedBlock + 1 + needle, LOGIT_SCALE);
    } else if (id === EOS_ID) {
      head.set(id, layout.copiedBlock + 0, LOGIT_SCALE); // copied KEY
      head.set(id, layout.copiedBlock + layout.codes, LOGIT_SCALE); // copied "other"
    } else {
      head.set(id, layout.bias, -LOGIT_SCALE);
    }
  }
  weights.set('lm_head.weight', head.tensor);
  return weights;
}
