/**
 * The reference forward pass against an independent whole-sequence implementation of the same
 * equations, on small random Llama specs (GQA, tied and untied lm_head).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LlamaConfig, LlamaSpec, WeightTensor } from '../llama-spec.ts';
import { ReferenceDecoder, greedyGenerate, ropeAngle, ropeInverseFrequencies, rotatePair } from './reference-forward.ts';

/** A small deterministic generator (LCG) for test weights. */
function uniforms(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

/** A random spec: 4 query heads over 2 KV heads, every tensor present. */
function randomSpec(tied: boolean, seed = 7): Pick<LlamaSpec, 'config' | 'weights'> {
  const config: LlamaConfig = {
    vocab_size: 31,
    hidden_size: 24,
    intermediate_size: 20,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 512,
    tie_word_embeddings: tied,
    bos_token_id: 0,
    eos_token_id: 1,
  };
  const next = uniforms(seed);
  const weights = new Map<string, WeightTensor>();
  const put = (name: string, shape: number[], scale: number, offset = 0) => {
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * next());
    weights.set(name, { shape, data });
  };
  const { hidden_size: H, head_dim: D, intermediate_size: I } = config;
  put('model.embed_tokens.weight', [config.vocab_size, H], 2);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    put(`${p}.input_layernorm.weight`, [H], 0.4, 1);
    put(`${p}.self_attn.q_proj.weight`, [config.num_attention_heads * D, H], 1);
    put(`${p}.self_attn.k_proj.weight`, [config.num_key_value_heads * D, H], 1);
    put(`${p}.self_attn.v_proj.weight`, [config.num_key_value_heads * D, H], 1);
    put(`${p}.self_attn.o_proj.weight`, [H, config.num_attention_heads * D], 0.5);
    put(`${p}.post_attention_layernorm.weight`, [H], 0.4, 1);
    put(`${p}.mlp.gate_proj.weight`, [I, H], 1);
    put(`${p}.mlp.up_proj.weight`, [I, H], 1);
    put(`${p}.mlp.down_proj.weight`, [H, I], 0.5);
  }
  put('model.norm.weight', [H], 0.4, 1);
  if (!tied) put('lm_head.weight', [config.vocab_size, H], 1);
  return { config, weights };
}

/** Whole-sequence forward in float64, written directly from the llama-spec.ts equations. */
function naiveForward(spec: Pick<LlamaSpec, 'config' | 'weights'>, ids: readonly number[]): number[][] {
  const c = spec.config;
  const W = (name: string) => {
    const t = spec.weights.get(name);
    assert.ok(t, name);
    return { rows: t.shape[0] as number, cols: t.shape[1] ?? 1, data: t.data };
  };
  const linear = (name: string, x: number[]) => {
    const w = W(name);
    return Array.from({ length: w.rows }, (_, o) => x.reduce((sum, xi, i) => sum + (w.data[o * w.cols + i] as number) * xi, 0));
  };
  const norm = (x: number[], name: string) => {
    const w = W(name).data;
    const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.rms_norm_eps);
    return x.map((v, i) => (v / rms) * (w[i] as number));
  };
  const D = c.head_dim;
  const invFreq = ropeInverseFrequencies(c.rope_theta, D, 'float64');
  const rope = (x: number[], position: number) => {
    const out = x.slice();
    for (let base = 0; base < x.length; base += D) {
      for (let j = 0; j < D / 2; j++) {
        const [y1, y2] = rotatePair(x[base + j] as number, x[base + j + D / 2] as number, position * (invFreq[j] as number), 'float64');
        out[base + j] = y1;
        out[base + j + D / 2] = y2;
      }
    }
    return out;
  };
  const embed = W('model.embed_tokens.weight');
  let h = ids.map((id) => Array.from(embed.data.subarray(id * c.hidden_size, (id + 1) * c.hidden_size)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const x = h.map((row) => norm(row, `${p}.input_layernorm.weight`));
    const q = x.map((row, t) => rope(linear(`${p}.self_attn.q_proj.weight`, row), t));
    const k = x.map((row, t) => rope(linear(`${p}.self_attn.k_proj.weight`, row), t));
    const v = x.map((row) => linear(`${p}.self_attn.v_proj.weight`, row));
    const perKv = c.num_attention_heads / c.num_key_value_heads;
    const attn = q.map((qt, t) => {
      const out: number[] = [];
      for (let head = 0; head < c.num_attention_heads; head++) {
        const kv = Math.floor(head / perKv);
        const scores = Array.from({ length: t + 1 }, (_, s) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += (qt[head * D + d] as number) * (k[s]?.[kv * D + d] as number);
          return dot / Math.sqrt(D);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const total = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) out.push(e.reduce((sum, w, s) => sum + (w / total) * (v[s]?.[kv * D + d] as number), 0));
      }
      return out;
    });
    h = h.map((row, t) => {
      const o = linear(`${p}.self_attn.o_proj.weight`, attn[t] as number[]);
      const mid = row.map((val, i) => val + (o[i] as number));
      const y = norm(mid, `${p}.post_attention_layernorm.weight`);
      const gate = linear(`${p}.mlp.gate_proj.weight`, y);
      const up = linear(`${p}.mlp.up_proj.weight`, y);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * (up[i] as number));
      const down = linear(`${p}.mlp.down_proj.weight`, act);
      return mid.map((val, i) => val + (down[i] as number));
    });
  }
  const head = c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return h.map((row) => linear(head, norm(row, 'model.norm.weight')));
}

const IDS = [0, 5, 9, 30, 2, 2, 17, 4, 11, 29, 3, 8, 8, 1, 22, 13, 6, 0, 19, 25];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

for (const tied of [true, false]) {
  test(`float64 incremental decoding equals the whole-sequence equations (${tied ? 'tied' : 'untied'} lm_head, GQA 4/2)`, () => {
    const spec = randomSpec(tied);
    const expected = naiveForward(spec, IDS);
    const decoder = new ReferenceDecoder(spec);
    // Uneven chunks: the cache must make chunking invisible.
    const got = [...decoder.forward(IDS.slice(0, 7)), ...decoder.forward(IDS.slice(7, 8)), ...decoder.forward(IDS.slice(8))];
    assert.equal(decoder.length, IDS.length);
    got.forEach((logits, t) => {
      assert.ok(maxAbsDiff(logits, expected[t] as number[]) < 1e-9, `position ${t}`);
    });
  });
}

test('float32 mode stays within float32 rounding of float64', () => {
  const spec = randomSpec(true);
  const f64 = new ReferenceDecoder(spec).forward(IDS);
  const f32 = new ReferenceDecoder(spec, { precision: 'float32' }).forward(IDS);
  f64.forEach((logits, t) => {
    const scale = Math.max(...Array.from(logits, Math.abs));
    const diff = maxAbsDiff(logits, f32[t] as Float64Array);
    assert.ok(diff < 1e-4 * scale, `position ${t}: ${diff}`);
    assert.ok(Array.from(f32[t] as Float64Array).every((x) => x === Math.fround(x)), 'float32 logits are float32 values');
  });
});

test('append returns the last logits, and a fork continues independently of its parent', () => {
  const spec = randomSpec(false);
  const all = new ReferenceDecoder(spec).forward(IDS);
  const parent = new ReferenceDecoder(spec);
  assert.deepEqual(parent.append(IDS.slice(0, 10)), all[9]);
  const child = parent.fork();
  assert.deepEqual(child.append(IDS.slice(10)), all[IDS.length - 1]);
  assert.equal(parent.length, 10);
  assert.deepEqual(parent.append([IDS[10] as number]), all[10]);
});

test('greedy generation stops at a stop id and includes it', () => {
  const spec = randomSpec(true);
  const free = greedyGenerate(new ReferenceDecoder(spec), IDS, 12);
  assert.equal(free.length, 12);
  const stop = free[3] as number;
  const stopped = greedyGenerate(new ReferenceDecoder(spec), IDS, 12, [stop]);
  assert.deepEqual(stopped, free.slice(0, free.indexOf(stop) + 1));
});

test('float32 RoPE angles are formed as float32(position) * float32(invFreq), rounded', () => {
  const inv = ropeInverseFrequencies(1e10, 256, 'float32');
  assert.equal(inv[1], Math.fround(1e10 ** (-2 / 256)));
  const position = 131071;
  assert.equal(ropeAngle(position, inv[0] as number, 'float32'), Math.fround(131071));
  const exact = position * 1e10 ** (-2 / 256);
  const rounded = ropeAngle(position, inv[1] as number, 'float32');
  assert.ok(Math.abs(rounded - exact) < position * 2 ** -23, 'error within the float32 bound p * 2^-23');
  assert.notEqual(rounded, exact);
});
