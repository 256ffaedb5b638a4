/**
 * Numerical proof of the recall model's attention margins, computed from its actual weights.
 *
 * Each analysis builds the residual vectors the construction puts in front of a head (the token
 * embedding; for layer 1 the embedding plus what layer 0 writes when it attends to the previous
 * token), runs them through the spec's norm and projection weights, applies RoPE at the query
 * position and at every key position (queryPosition - offset for every offset down to 0), and
 * scores them as the graph does (q·k / sqrt(headDim)), in float64 or emulated float32.
 *
 * Only the RoPE pairs where the query vector is non-zero are scored: RoPE mixes the two halves of
 * a pair and nothing else, so a pair whose query components are zero contributes exactly 0 to
 * q·k in any precision. The analyses check that support from the weights rather than assume it.
 */
import type { LlamaSpec } from '../llama-spec.ts';
import { BOS_ID, EOS_ID, FIRST_NEEDLE_ID, HEAD_DIM, KEY_ID, type RecallLayout } from './layout.ts';
import { type Precision, matVec, rmsNorm, ropeInverseFrequencies, rounder } from './reference-forward.ts';

/** The spec's tensors as float64, plus the residual vectors the construction intends. */
class Probe {
  private readonly r: (x: number) => number;
  private readonly cache = new Map<string, Float64Array>();
  constructor(
    readonly spec: Pick<LlamaSpec, 'config' | 'weights'>,
    readonly layout: RecallLayout,
    readonly precision: Precision,
  ) {
    this.r = rounder(precision);
  }

  tensor(name: string): Float64Array {
    let data = this.cache.get(name);
    if (!data) {
      const t = this.spec.weights.get(name);
      if (!t) throw new Error(`recall margins: weights lack ${name}`);
      data = Float64Array.from(t.data);
      this.cache.set(name, data);
    }
    return data;
  }

  /** A token of class c: KEY for code 0, needle c - 1, or a filler for "other". */
  classToken(c: number): number {
    if (c === 0) return KEY_ID;
    if (c < this.layout.codes) return FIRST_NEEDLE_ID + c - 1;
    return this.layout.firstFillerId;
  }

  embed(id: number): Float64Array {
    const H = this.layout.hidden;
    return this.tensor('model.embed_tokens.weight').slice(id * H, (id + 1) * H); // [hidden]
  }

  normed(h: Float64Array, name: string): Float64Array {
    return rmsNorm(h, this.tensor(name), this.spec.config.rms_norm_eps, this.precision);
  }

  project(layer: number, proj: 'q' | 'k' | 'v', x: Float64Array): Float64Array {
    return matVec(this.tensor(`model.layers.${layer}.self_attn.${proj}_proj.weight`), x, HEAD_DIM, this.r); // [headDim]
  }

  /** What a head writes to the residual when all its attention is on a token of residual h. */
  headOutput(layer: number, h: Float64Array): Float64Array {
    const v = this.project(layer, 'v', this.normed(h, `model.layers.${layer}.input_layernorm.weight`));
    return matVec(this.tensor(`model.layers.${layer}.self_attn.o_proj.weight`), v, this.layout.hidden, this.r); // [hidden]
  }

  /** Residual after layer 0 at a token of class `own` whose previous token has class `prev`. */
  afterLayer0(prev: number, own: number): Float64Array {
    const written = this.headOutput(0, this.embed(this.classToken(prev)));
    return this.embed(this.classToken(own)).map((x, i) => this.r(x + (written[i] as number)));
  }
}

/**
 * Scores each query (at queryPosition) against each key at queryPosition - offset, for every
 * offset 0..queryPosition, summing over `pairs` only; RoPE frequencies and angles are formed as
 * the graph forms them. Returns [queries][keys][offsets].
 */
function scoreOffsets(
  queries: readonly Float64Array[],
  keys: readonly Float64Array[],
  pairs: readonly number[],
  queryPosition: number,
  theta: number,
  precision: Precision,
): Float64Array[][] {
  const invFreq = ropeInverseFrequencies(theta, HEAD_DIM, precision);
  const r = rounder(precision);
  const half = HEAD_DIM / 2;
  const scale = r(1 / Math.sqrt(HEAD_DIM));
  const P = pairs.length;
  const Q = queries.length;
  const K = keys.length;
  const angle = (position: number, pi: number) => r(r(position) * (invFreq[pairs[pi] as number] as number));
  // Rotated queries and raw keys, restricted to the used pairs: [Q][P][2], [K][P][2]
  const qr = new Float64Array(Q * P * 2);
  const kp = new Float64Array(K * P * 2);
  for (let pi = 0; pi < P; pi++) {
    const j = pairs[pi] as number;
    const c = r(Math.cos(angle(queryPosition, pi)));
    const s = r(Math.sin(angle(queryPosition, pi)));
    queries.forEach((q, qi) => {
      const x1 = q[j] as number;
      const x2 = q[j + half] as number;
      qr[(qi * P + pi) * 2] = r(r(x1 * c) + r(-x2 * s));
      qr[(qi * P + pi) * 2 + 1] = r(r(x2 * c) + r(x1 * s));
    });
    keys.forEach((k, ki) => {
      kp[(ki * P + pi) * 2] = k[j] as number;
      kp[(ki * P + pi) * 2 + 1] = k[j + half] as number;
    });
  }
  const out = queries.map(() => keys.map(() => new Float64Array(queryPosition + 1)));
  const sums = new Float64Array(Q * K);
  for (let offset = 0; offset <= queryPosition; offset++) {
    sums.fill(0);
    for (let pi = 0; pi < P; pi++) {
      const a = angle(queryPosition - offset, pi);
      const c = r(Math.cos(a));
      const s = r(Math.sin(a));
      for (let ki = 0; ki < K; ki++) {
        const ko = (ki * P + pi) * 2;
        const x1 = kp[ko] as number;
        const x2 = kp[ko + 1] as number;
        const y1 = r(r(x1 * c) + r(-x2 * s));
        const y2 = r(r(x2 * c) + r(x1 * s));
        for (let qi = 0; qi < Q; qi++) {
          const qo = (qi * P + pi) * 2;
          const term = r(r((qr[qo] as number) * y1) + r((qr[qo + 1] as number) * y2));
          sums[qi * K + ki] = r((sums[qi * K + ki] as number) + term);
        }
      }
    }
    for (let qi = 0; qi < Q; qi++) {
      const row = out[qi] as Float64Array[];
      for (let ki = 0; ki < K; ki++) (row[ki] as Float64Array)[offset] = r((sums[qi * K + ki] as number) * scale);
    }
  }
  return out;
}

/** Pairs where a head vector has a non-zero component. */
function supportPairs(x: Float64Array): number[] {
  const half = HEAD_DIM / 2;
  const pairs: number[] = [];
  for (let j = 0; j < half; j++) if (x[j] !== 0 || x[j + half] !== 0) pairs.push(j);
  return pairs;
}

/** Options of both analyses. */
export interface MarginOptions {
  readonly precision: Precision;
  /** Position of the query; every offset 0..queryPosition is scored. Default maxPositions - 1. */
  readonly queryPosition?: number;
}

/** The previous-token head (layer 0) over every offset. */
export interface PreviousTokenHeadReport {
  readonly precision: Precision;
  readonly queryPosition: number;
  /** Pairs the head's query uses. */
  readonly pairs: readonly number[];
  /** Score per offset 0..queryPosition. */
  readonly scores: Float64Array;
  readonly scoreAtOne: number;
  readonly bestRival: number;
  readonly bestRivalOffset: number;
  /** scoreAtOne - bestRival. */
  readonly margin: number;
  /** Softmax mass on offset 1 over all offsets 0..queryPosition, with the actual scores. */
  readonly massOnOne: number;
  /** The same if every other offset scored bestRival: 1 / (1 + queryPosition e^-margin). */
  readonly worstCaseMassOnOne: number;
}

/** Scores layer 0's head at every offset and checks it does not depend on the token. */
export function analysePreviousTokenHead(
  spec: Pick<LlamaSpec, 'config' | 'weights'>,
  layout: RecallLayout,
  options: MarginOptions,
): PreviousTokenHeadReport {
  const probe = new Probe(spec, layout, options.precision);
  const queryPosition = options.queryPosition ?? layout.maxPositions - 1;
  const vectors = [KEY_ID, FIRST_NEEDLE_ID, BOS_ID, EOS_ID, layout.firstFillerId].map((id) => {
    const x = probe.normed(probe.embed(id), 'model.layers.0.input_layernorm.weight');
    return { q: probe.project(0, 'q', x), k: probe.project(0, 'k', x) };
  });
  const { q, k } = vectors[0] as { q: Float64Array; k: Float64Array };
  for (const other of vectors) {
    if (other.q.some((x, i) => x !== q[i]) || other.k.some((x, i) => x !== k[i])) {
      throw new Error('recall margins: the previous-token head query/key depends on the token');
    }
  }
  const pairs = supportPairs(q);
  const scores = scoreOffsets([q], [k], pairs, queryPosition, spec.config.rope_theta, options.precision)[0]?.[0] as Float64Array;
  const scoreAtOne = scores[1] as number;
  let bestRival = -Infinity;
  let bestRivalOffset = -1;
  let total = 0;
  scores.forEach((s, offset) => {
    total += Math.exp(s - scoreAtOne);
    if (offset !== 1 && s > bestRival) {
      bestRival = s;
      bestRivalOffset = offset;
    }
  });
  const margin = scoreAtOne - bestRival;
  return {
    precision: options.precision,
    queryPosition,
    pairs,
    scores,
    scoreAtOne,
    bestRival,
    bestRivalOffset,
    margin,
    massOnOne: 1 / total,
    worstCaseMassOnOne: 1 / (1 + queryPosition * Math.exp(-margin)),
  };
}

/** The induction head (layer 1) over every offset, every query code and every kind of key. */
export interface InductionHeadReport {
  readonly precision: Precision;
  readonly queryPosition: number;
  /** Lowest score of a matching key (previous token = query token, own token not), any offset. */
  readonly minMatch: number;
  readonly minMatchOffset: number;
  /** Highest score of any non-matching key, any offset. */
  readonly maxNonMatch: number;
  readonly maxNonMatchOffset: number;
  /** minMatch - maxNonMatch: the match beats every other key at every distance by this much. */
  readonly margin: number;
  /** Softmax mass on the match if all queryPosition other keys scored maxNonMatch. */
  readonly worstCaseMassOnMatch: number;
}

/**
 * Scores layer 1's head for every query code against every kind of key. A key's components in
 * the query's pair depend only on whether its previous and own tokens are the query code A, the
 * other code A' of A's pair, or anything else; so keys (prev, own) over {A, A', a code of another
 * pair, a filler}^2 cover every key the query can meet. Match: prev = A and own != A.
 */
export function analyseInductionHead(
  spec: Pick<LlamaSpec, 'config' | 'weights'>,
  layout: RecallLayout,
  options: MarginOptions,
): InductionHeadReport {
  const probe = new Probe(spec, layout, options.precision);
  const queryPosition = options.queryPosition ?? layout.maxPositions - 1;
  const other = layout.codes;
  const norm1 = 'model.layers.1.input_layernorm.weight';
  const query = (a: number) => probe.project(1, 'q', probe.normed(probe.afterLayer0(other, a), norm1));
  const key = (prev: number, own: number) => probe.project(1, 'k', probe.normed(probe.afterLayer0(prev, own), norm1));
  // Group the codes by the pair their query uses.
  const byPair = new Map<number, number[]>();
  for (let a = 0; a < layout.codes; a++) {
    const pairs = supportPairs(query(a));
    if (pairs.length !== 1) throw new Error(`recall margins: the query of code ${a} uses ${pairs.length} pairs, expected 1`);
    const j = pairs[0] as number;
    byPair.set(j, [...(byPair.get(j) ?? []), a]);
    // A code's part of any key (as previous or as own token) lies in the same single pair, so a
    // code of another pair cannot touch this pair: one representative stands for all of them.
    for (const [prev, own] of [[a, other], [other, a]] as const) {
      const support = supportPairs(key(prev, own));
      if (support.length !== 1 || support[0] !== j) throw new Error(`recall margins: the key part of code ${a} leaves pair ${j}`);
    }
  }
  if (supportPairs(key(other, other)).length !== 0) throw new Error('recall margins: a filler-only key is not zero');
  let minMatch = Infinity;
  let minMatchOffset = -1;
  let maxNonMatch = -Infinity;
  let maxNonMatchOffset = -1;
  for (const [j, codes] of byPair) {
    const elsewhere = [0, 1, 2].find((c) => !codes.includes(c)) as number;
    const kinds = [...codes, elsewhere, other];
    const combos = kinds.flatMap((prev) => kinds.map((own) => ({ prev, own, k: key(prev, own) })));
    // Keys equal on pair j score identically against these queries: scan each distinct one once.
    const distinct = new Map<string, Float64Array>();
    const slot = combos.map((combo) => {
      const id = `${combo.k[j]},${combo.k[j + HEAD_DIM / 2]}`;
      if (!distinct.has(id)) distinct.set(id, combo.k);
      return [...distinct.keys()].indexOf(id);
    });
    const scores = scoreOffsets(codes.map(query), [...distinct.values()], [j], queryPosition, spec.config.rope_theta, options.precision);
    codes.forEach((a, qi) => {
      combos.forEach((combo, ci) => {
        const match = combo.prev === a && combo.own !== a;
        const row = scores[qi]?.[slot[ci] as number] as Float64Array;
        for (let offset = 0; offset < row.length; offset++) {
          const s = row[offset] as number;
          if (match && s < minMatch) [minMatch, minMatchOffset] = [s, offset];
          if (!match && s > maxNonMatch) [maxNonMatch, maxNonMatchOffset] = [s, offset];
        }
      });
    });
  }
  const margin = minMatch - maxNonMatch;
  return {
    precision: options.precision,
    queryPosition,
    minMatch,
    minMatchOffset,
    maxNonMatch,
    maxNonMatchOffset,
    margin,
    worstCaseMassOnMatch: 1 / (1 + queryPosition * Math.exp(-margin)),
  };
}

/** What lm_head makes of the induction head's output. */
export interface ReadoutReport {
  readonly precision: Precision;
  /** Smallest (expected logit - best other logit) when the head copies one token exactly. */
  readonly exactMargin: number;
  /**
   * The same, lower-bounded over every way of spreading (1 - massOnMatch) of the attention over
   * other tokens: the answer still wins by at least this much.
   */
  readonly mixedMargin: number;
}

/**
 * Logits when layer 1 copies each class: a needle must give its own token, KEY or a filler must
 * give `</s>`. Logits are linear in the copied vector before the final norm, whose positive scale
 * is the same for every token, so a mixture's argmax is bounded class by class.
 */
export function analyseReadout(
  spec: Pick<LlamaSpec, 'config' | 'weights'>,
  layout: RecallLayout,
  options: { precision: Precision; massOnMatch: number },
): ReadoutReport {
  const probe = new Probe(spec, layout, options.precision);
  const r = rounder(options.precision);
  const head = spec.config.tie_word_embeddings ? probe.tensor('model.embed_tokens.weight') : probe.tensor('lm_head.weight');
  const base = probe.afterLayer0(layout.codes, 0); // the query position: own KEY, previous a filler
  const logits = Array.from({ length: layout.classes }, (_, c) => {
    const copied = probe.headOutput(1, probe.afterLayer0(layout.codes, c));
    const h = base.map((x, i) => r(x + (copied[i] as number)));
    return matVec(head, probe.normed(h, 'model.norm.weight'), layout.vocabSize, r); // [vocab]
  });
  const expected = (c: number) => (c > 0 && c < layout.codes ? FIRST_NEEDLE_ID + c - 1 : EOS_ID);
  const m = options.massOnMatch;
  // Per token, the highest and lowest logit any copied class gives it: [vocab]
  const highest = Float64Array.from({ length: layout.vocabSize }, (_, t) => Math.max(...logits.map((x) => x[t] as number)));
  const lowest = Float64Array.from({ length: layout.vocabSize }, (_, t) => Math.min(...logits.map((x) => x[t] as number)));
  let exactMargin = Infinity;
  let mixedMargin = Infinity;
  logits.forEach((l, c) => {
    const e = expected(c);
    let bestOther = -Infinity;
    let bestOtherMixed = -Infinity;
    for (let t = 0; t < layout.vocabSize; t++) {
      if (t === e) continue;
      bestOther = Math.max(bestOther, l[t] as number);
      bestOtherMixed = Math.max(bestOtherMixed, m * (l[t] as number) + (1 - m) * (highest[t] as number));
    }
    const answerMixed = m * (l[e] as number) + (1 - m) * (lowest[e] as number);
    exactMargin = Math.min(exactMargin, (l[e] as number) - bestOther);
    mixedMargin = Math.min(mixedMargin, answerMixed - bestOtherMixed);
  });
  return { precision: options.precision, exactMargin, mixedMargin };
}
