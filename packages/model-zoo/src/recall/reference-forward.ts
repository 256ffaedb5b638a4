/**
 * A plain-JS reference forward pass of the Llama architecture exactly as llama-spec.ts describes
 * it (embedding, RMSNorm, RoPE in rotate_half layout with optional llama3 frequency scaling,
 * grouped-query causal attention, SwiGLU, projection biases where the weights have them, lm_head
 * tied or untied), generic over any LlamaSpec. It keeps a KV cache, so feeding tokens one
 * at a time or all at once costs the same and greedy generation never recomputes the prefix.
 *
 * Two precisions:
 *   float64  every value in float64: the model's mathematics, to compare an ONNX run against.
 *   float32  every value the graph stores is rounded to float32 (Math.fround) at the same op
 *            boundaries the ONNX graph has, and RoPE angles are formed as the graph forms them:
 *            inverse frequencies rounded to float32, then float32(position) * invFreq in float32.
 *            Sums inside one op accumulate in float64 (an ORT kernel's order is unspecified).
 */
import type { LlamaConfig, LlamaSpec, WeightTensor } from '../llama-spec.ts';
import { type RopeScaling, ropeFrequencies } from '../rope.ts';

export type Precision = 'float64' | 'float32';

const keep = (x: number): number => x;

/** Identity for float64, Math.fround for float32. */
export function rounder(precision: Precision): (x: number) => number {
  return precision === 'float32' ? Math.fround : keep;
}

/** RoPE inverse frequencies theta^(-2j/D), j in [0, D/2), scaled per rope.ts; rounded to float32 in float32 mode. */
export function ropeInverseFrequencies(theta: number, headDim: number, precision: Precision, scaling: RopeScaling | null = null): Float64Array {
  return ropeFrequencies(theta, headDim, scaling).map(rounder(precision));
}

/** The rotation angle of a pair at a position: position * invFreq, as the graph computes it. */
export function ropeAngle(position: number, invFrequency: number, precision: Precision): number {
  const r = rounder(precision);
  return r(r(position) * invFrequency);
}

/**
 * Rotates one pair (x1 = dim j, x2 = dim j + D/2) by `angle` the way `x*cos + rotate_half(x)*sin`
 * does: y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin.
 */
export function rotatePair(x1: number, x2: number, angle: number, precision: Precision): [number, number] {
  const r = rounder(precision);
  const c = r(Math.cos(angle));
  const s = r(Math.sin(angle));
  return [r(r(x1 * c) + r(-x2 * s)), r(r(x2 * c) + r(x1 * s))];
}

/** One layer's weights as float64 arrays, [out, in] row-major. */
interface LayerWeights {
  readonly inputNorm: Float64Array; // [hidden]
  readonly q: Float64Array; // [heads * headDim, hidden]
  readonly k: Float64Array; // [kvHeads * headDim, hidden]
  readonly v: Float64Array; // [kvHeads * headDim, hidden]
  readonly o: Float64Array; // [hidden, heads * headDim]
  readonly postNorm: Float64Array; // [hidden]
  readonly gate: Float64Array; // [intermediate, hidden]
  readonly up: Float64Array; // [intermediate, hidden]
  readonly down: Float64Array; // [hidden, intermediate]
  /** Projection biases, where the weights have them: [out] each. */
  readonly bias: Partial<Record<Projection, Float64Array>>;
}

const PROJECTIONS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'] as const;
type Projection = (typeof PROJECTIONS)[number];

/** Read-only weights shared by every decoder made from one spec. */
interface ModelWeights {
  readonly embed: Float64Array; // [vocab, hidden]
  readonly layers: readonly LayerWeights[];
  readonly norm: Float64Array; // [hidden]
  readonly head: Float64Array; // [vocab, hidden]
}

function loadWeights(spec: Pick<LlamaSpec, 'config' | 'weights'>): ModelWeights {
  // A bias or weight the decoder would not read is a model it does not implement.
  const known = /^model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight$|^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.(weight|bias)$|^(model\.embed_tokens|model\.norm|lm_head)\.weight$/;
  for (const name of spec.weights.keys()) if (!known.test(name)) throw new Error(`reference forward: unknown weight ${name}`);
  const c = spec.config;
  const get = (name: string, shape: readonly number[]): Float64Array => {
    const t: WeightTensor | undefined = spec.weights.get(name);
    if (!t) throw new Error(`reference forward: weights lack ${name}`);
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      throw new Error(`reference forward: ${name} has shape [${t.shape}], expected [${shape}]`);
    }
    return Float64Array.from(t.data);
  };
  const H = c.hidden_size;
  const D = c.head_dim;
  const I = c.intermediate_size;
  const outWidth: Record<Projection, number> = {
    'self_attn.q_proj': c.num_attention_heads * D,
    'self_attn.k_proj': c.num_key_value_heads * D,
    'self_attn.v_proj': c.num_key_value_heads * D,
    'self_attn.o_proj': H,
    'mlp.gate_proj': I,
    'mlp.up_proj': I,
    'mlp.down_proj': H,
  };
  const layers = Array.from({ length: c.num_hidden_layers }, (_, i) => {
    const p = `model.layers.${i}`;
    const bias: Partial<Record<Projection, Float64Array>> = {};
    for (const proj of PROJECTIONS) if (spec.weights.has(`${p}.${proj}.bias`)) bias[proj] = get(`${p}.${proj}.bias`, [outWidth[proj]]);
    return {
      bias,
      inputNorm: get(`${p}.input_layernorm.weight`, [H]),
      q: get(`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * D, H]),
      k: get(`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * D, H]),
      v: get(`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * D, H]),
      o: get(`${p}.self_attn.o_proj.weight`, [H, c.num_attention_heads * D]),
      postNorm: get(`${p}.post_attention_layernorm.weight`, [H]),
      gate: get(`${p}.mlp.gate_proj.weight`, [I, H]),
      up: get(`${p}.mlp.up_proj.weight`, [I, H]),
      down: get(`${p}.mlp.down_proj.weight`, [H, I]),
    };
  });
  const embed = get('model.embed_tokens.weight', [c.vocab_size, H]);
  const head = c.tie_word_embeddings ? embed : get('lm_head.weight', [c.vocab_size, H]);
  return { embed, layers, norm: get('model.norm.weight', [H]), head };
}

/** out[o] = round(sum_i w[o, i] x[i]) for w [rows, cols] (a Linear layer, [out, in]). */
export function matVec(w: Float64Array, x: Float64Array, rows: number, r: (x: number) => number): Float64Array {
  const cols = x.length;
  const out = new Float64Array(rows);
  for (let o = 0; o < rows; o++) {
    let sum = 0;
    const base = o * cols;
    for (let i = 0; i < cols; i++) sum += (w[base + i] as number) * (x[i] as number);
    out[o] = r(sum);
  }
  return out;
}

/** y + b in place, rounded as the graph's Add (y unchanged without a bias). */
function addBias(y: Float64Array, b: Float64Array | undefined, r: (x: number) => number): Float64Array {
  if (b) for (let i = 0; i < y.length; i++) y[i] = r((y[i] as number) + (b[i] as number));
  return y;
}

/** x / sqrt(mean(x^2) + eps) * weight, rounded as the graph's Mul/ReduceMean/Add/Sqrt/Div/Mul. */
export function rmsNorm(x: Float64Array, weight: Float64Array, eps: number, precision: Precision): Float64Array {
  const r = rounder(precision);
  let sum = 0;
  for (const v of x) sum += r(v * v);
  const denom = r(Math.sqrt(r(r(sum / x.length) + r(eps))));
  return x.map((v, i) => r(r(v / denom) * (weight[i] as number)));
}

/**
 * An incremental reference decoder: a KV cache plus the weights. `append` runs tokens at the next
 * positions and returns the last token's logits; `fork` copies the cache to branch a prefix.
 */
export class ReferenceDecoder {
  readonly config: LlamaConfig;
  readonly precision: Precision;
  private readonly w: ModelWeights;
  private readonly invFreq: Float64Array; // [headDim / 2]
  private readonly r: (x: number) => number;
  /** Per layer: keys and values by position. */
  private keys: Float64Array[]; // [layers][capacity, kvHeads * headDim] (RoPE applied)
  private values: Float64Array[]; // [layers][capacity, kvHeads * headDim]
  private capacity: number;
  private len = 0;

  constructor(spec: Pick<LlamaSpec, 'config' | 'weights'>, options: { precision?: Precision } = {}) {
    this.config = spec.config;
    this.precision = options.precision ?? 'float64';
    this.r = rounder(this.precision);
    this.w = loadWeights(spec);
    this.invFreq = ropeInverseFrequencies(this.config.rope_theta, this.config.head_dim, this.precision, this.config.rope_scaling ?? null);
    this.capacity = 0;
    this.keys = [];
    this.values = [];
    this.grow(64);
  }

  /** Tokens in the cache; the next token runs at this position. */
  get length(): number {
    return this.len;
  }

  /** An independent decoder holding a copy of this one's cache. */
  fork(): ReferenceDecoder {
    const copy = Object.create(ReferenceDecoder.prototype) as ReferenceDecoder;
    Object.assign(copy, this);
    copy.keys = this.keys.map((k) => k.slice());
    copy.values = this.values.map((v) => v.slice());
    return copy;
  }

  /** Runs `ids` at positions length, length + 1, ...; returns the logits of the last one [vocab]. */
  append(ids: readonly number[]): Float64Array {
    if (ids.length === 0) throw new RangeError('reference forward: append needs at least one token');
    for (let i = 0; i < ids.length - 1; i++) this.step(ids[i] as number);
    return this.logits(this.step(ids[ids.length - 1] as number));
  }

  /** Runs `ids` and returns every position's logits [seq][vocab]. */
  forward(ids: readonly number[]): Float64Array[] {
    return ids.map((id) => this.logits(this.step(id)));
  }

  private grow(minimum: number): void {
    const width = this.config.num_key_value_heads * this.config.head_dim;
    const capacity = Math.max(minimum, this.capacity * 2);
    const widen = (old: Float64Array | undefined) => {
      const next = new Float64Array(capacity * width);
      if (old) next.set(old.subarray(0, this.len * width));
      return next;
    };
    this.keys = Array.from({ length: this.config.num_hidden_layers }, (_, l) => widen(this.keys[l]));
    this.values = Array.from({ length: this.config.num_hidden_layers }, (_, l) => widen(this.values[l]));
    this.capacity = capacity;
  }

  /** Runs one token through every layer, appending its K/V; returns the final residual [hidden]. */
  private step(id: number): Float64Array {
    const c = this.config;
    const r = this.r;
    if (!Number.isInteger(id) || id < 0 || id >= c.vocab_size) throw new RangeError(`reference forward: token id ${id} out of range`);
    if (this.len === this.capacity) this.grow(this.capacity + 1);
    const H = c.hidden_size;
    const D = c.head_dim;
    const kvWidth = c.num_key_value_heads * D;
    const groups = c.num_attention_heads / c.num_key_value_heads;
    const pos = this.len;
    const h = this.w.embed.slice(id * H, (id + 1) * H); // [hidden]
    const cos = new Float64Array(D / 2);
    const sin = new Float64Array(D / 2);
    for (let j = 0; j < D / 2; j++) {
      const angle = ropeAngle(pos, this.invFreq[j] as number, this.precision);
      cos[j] = r(Math.cos(angle));
      sin[j] = r(Math.sin(angle));
    }
    const rope = (x: Float64Array, heads: number) => {
      for (let hd = 0; hd < heads; hd++) {
        for (let j = 0; j < D / 2; j++) {
          const a = hd * D + j;
          const b = a + D / 2;
          const x1 = x[a] as number;
          const x2 = x[b] as number;
          x[a] = r(r(x1 * (cos[j] as number)) + r(-x2 * (sin[j] as number)));
          x[b] = r(r(x2 * (cos[j] as number)) + r(x1 * (sin[j] as number)));
        }
      }
    };
    const scale = r(1 / Math.sqrt(D));
    const scores = new Float64Array(pos + 1); // [past + 1]
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const lw = this.w.layers[l] as LayerWeights;
      const x = rmsNorm(h, lw.inputNorm, c.rms_norm_eps, this.precision);
      const q = addBias(matVec(lw.q, x, c.num_attention_heads * D, r), lw.bias['self_attn.q_proj'], r); // [heads * headDim]
      const k = addBias(matVec(lw.k, x, kvWidth, r), lw.bias['self_attn.k_proj'], r); // [kvHeads * headDim]
      const v = addBias(matVec(lw.v, x, kvWidth, r), lw.bias['self_attn.v_proj'], r); // [kvHeads * headDim]
      rope(q, c.num_attention_heads);
      rope(k, c.num_key_value_heads);
      const keys = this.keys[l] as Float64Array;
      const values = this.values[l] as Float64Array;
      keys.set(k, pos * kvWidth);
      values.set(v, pos * kvWidth);
      const attn = new Float64Array(c.num_attention_heads * D); // [heads * headDim]
      for (let hd = 0; hd < c.num_attention_heads; hd++) {
        const kvOff = Math.floor(hd / groups) * D;
        const qOff = hd * D;
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let dot = 0;
          const kOff = t * kvWidth + kvOff;
          for (let d = 0; d < D; d++) dot += (q[qOff + d] as number) * (keys[kOff + d] as number);
          const s = r(r(dot) * scale);
          scores[t] = s;
          if (s > max) max = s;
        }
        let total = 0;
        for (let t = 0; t <= pos; t++) {
          const e = r(Math.exp(r((scores[t] as number) - max)));
          scores[t] = e;
          total += e;
        }
        total = r(total);
        for (let t = 0; t <= pos; t++) {
          const p = r((scores[t] as number) / total);
          if (p === 0) continue;
          const vOff = t * kvWidth + kvOff;
          for (let d = 0; d < D; d++) attn[qOff + d] = (attn[qOff + d] as number) + p * (values[vOff + d] as number);
        }
        for (let d = 0; d < D; d++) attn[qOff + d] = r(attn[qOff + d] as number);
      }
      const out = addBias(matVec(lw.o, attn, H, r), lw.bias['self_attn.o_proj'], r);
      for (let i = 0; i < H; i++) h[i] = r((h[i] as number) + (out[i] as number));

      const y = rmsNorm(h, lw.postNorm, c.rms_norm_eps, this.precision);
      const gate = addBias(matVec(lw.gate, y, c.intermediate_size, r), lw.bias['mlp.gate_proj'], r);
      const up = addBias(matVec(lw.up, y, c.intermediate_size, r), lw.bias['mlp.up_proj'], r);
      const act = gate.map((g, i) => r(r(g * r(1 / (1 + Math.exp(-g)))) * (up[i] as number)));
      const down = addBias(matVec(lw.down, act, H, r), lw.bias['mlp.down_proj'], r);
      for (let i = 0; i < H; i++) h[i] = r((h[i] as number) + (down[i] as number));
    }
    this.len++;
    return h;
  }

  private logits(h: Float64Array): Float64Array {
    const x = rmsNorm(h, this.w.norm, this.config.rms_norm_eps, this.precision);
    return matVec(this.w.head, x, this.config.vocab_size, this.r); // [vocab]
  }
}

/** Index of the largest value (the first on ties), as greedy decoding picks. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/**
 * Greedy generation: feeds the prompt, then appends the argmax token until `maxNewTokens` are
 * produced or a stop id is produced (the stop id is included in the result).
 */
export function greedyGenerate(
  decoder: ReferenceDecoder,
  prompt: readonly number[],
  maxNewTokens: number,
  stopIds: readonly number[] = [],
): number[] {
  const out: number[] = [];
  let logits = decoder.append(prompt);
  while (out.length < maxNewTokens) {
    const next = argmax(logits);
    out.push(next);
    if (stopIds.includes(next) || out.length === maxNewTokens) break;
    logits = decoder.append([next]);
  }
  return out;
}
