/**
 * The recall model answers needle-in-a-haystack trials exactly under the reference forward pass:
 * several context lengths, depths (KEY at position 0, needle just before the question) and needle
 * lengths, in float64 and float32; plus the spec's shape and the protocol's rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BOS_ID, EOS_ID, FIRST_NEEDLE_ID, KEY_ID, expectedAnswer, expectedContinuation, recallLayout, recallSpec, recallTrial } from './index.ts';
import { type Precision, ReferenceDecoder, greedyGenerate } from './reference-forward.ts';

const spec = recallSpec();
const layout = recallLayout();

/** Greedy continuation of a prompt, long enough to show the answer and the stop token. */
function answer(ids: readonly number[], k: number, precision: Precision = 'float64'): number[] {
  return greedyGenerate(new ReferenceDecoder(spec, { precision }), ids, k + 1, [EOS_ID]);
}

test('the spec is a 2-layer Llama with HF names and [out, in] shapes', () => {
  const c = spec.config;
  assert.equal(c.vocab_size, 4 + 96 + 1000);
  assert.equal(c.hidden_size, 1 + 3 * 98);
  assert.equal(c.num_hidden_layers, 2);
  assert.equal(c.head_dim, 256);
  assert.equal(c.rope_theta, 1e10);
  assert.equal(c.max_position_embeddings, 131072);
  assert.equal(c.tie_word_embeddings, false);
  const H = c.hidden_size;
  const expected = new Map<string, number[]>([
    ['model.embed_tokens.weight', [c.vocab_size, H]],
    ['model.norm.weight', [H]],
    ['lm_head.weight', [c.vocab_size, H]],
  ]);
  for (let i = 0; i < 2; i++) {
    const p = `model.layers.${i}`;
    expected.set(`${p}.input_layernorm.weight`, [H]);
    expected.set(`${p}.self_attn.q_proj.weight`, [256, H]);
    expected.set(`${p}.self_attn.k_proj.weight`, [256, H]);
    expected.set(`${p}.self_attn.v_proj.weight`, [256, H]);
    expected.set(`${p}.self_attn.o_proj.weight`, [H, 256]);
    expected.set(`${p}.post_attention_layernorm.weight`, [H]);
    expected.set(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, H]);
    expected.set(`${p}.mlp.up_proj.weight`, [c.intermediate_size, H]);
    expected.set(`${p}.mlp.down_proj.weight`, [H, c.intermediate_size]);
  }
  assert.deepEqual(new Set(spec.weights.keys()), new Set(expected.keys()));
  for (const [name, shape] of expected) {
    const t = spec.weights.get(name);
    assert.deepEqual(t?.shape, shape, name);
    assert.equal(t?.data.length, shape.reduce((a, b) => a * b, 1), name);
    assert.ok(t?.data.every(Number.isFinite), name);
  }
  for (const mlp of ['gate_proj', 'up_proj', 'down_proj']) {
    for (let i = 0; i < 2; i++) assert.ok(spec.weights.get(`model.layers.${i}.mlp.${mlp}.weight`)?.data.every((x) => x === 0));
  }
});

test('the options resize the vocabulary and refuse more needles than the slow pairs hold', () => {
  const small = recallSpec({ needleTokens: 8, fillerTokens: 20, maxPositions: 4096 });
  assert.equal(small.config.vocab_size, 4 + 8 + 20);
  assert.equal(small.config.hidden_size, 1 + 3 * 10);
  assert.equal(small.config.max_position_embeddings, 4096);
  assert.doesNotThrow(() => recallLayout({ needleTokens: 97 }));
  assert.throws(() => recallLayout({ needleTokens: 98 }), /at most 97 needle tokens/);
});

/** Trials: [prompt length, needle values, depth, options]. Needle values index n0..n95. */
const TRIALS: { length: number; needle: number[]; depth: number; bos?: boolean; questionFillers?: number; seed?: number }[] = [
  { length: 300, needle: [7], depth: 0.5 },
  { length: 300, needle: [0, 1, 2], depth: 0 }, // right after <s>; n0 shares KEY's RoPE pair
  { length: 300, needle: [95, 94, 93, 92, 91, 90, 89, 88], depth: 1 }, // vk is followed by the question
  { length: 400, needle: [12, 40, 3, 77], depth: 0, bos: false }, // KEY at position 0
  { length: 500, needle: [5, 60], depth: 0.25, questionFillers: 6, seed: 3 },
  { length: 700, needle: [33, 1, 90, 45, 8, 61, 20, 2, 71, 50, 13, 84], depth: 0.75, seed: 4 },
  { length: 2000, needle: [42, 17, 93, 0, 64], depth: 0.1, seed: 5 },
];

for (const trial of TRIALS) {
  const name = `float64: ${trial.length} tokens, k=${trial.needle.length}, depth ${trial.depth}${trial.bos === false ? ', no <s>' : ''}${trial.questionFillers ? `, ${trial.questionFillers}-token question` : ''}`;
  test(`${name}: greedy decoding returns the needle, then </s>`, () => {
    const t = recallTrial(layout, trial);
    assert.equal(t.ids.length, trial.length);
    assert.deepEqual(expectedContinuation(layout, t.ids), [...t.answer, EOS_ID]);
    assert.deepEqual(answer(t.ids, trial.needle.length), [...t.answer, EOS_ID]);
  });
}

test('float32: 600 tokens, k=6, depth 0.4: the same answer under float32 rounding', () => {
  const t = recallTrial(layout, { length: 600, needle: [3, 9, 27, 81, 80, 78], depth: 0.4, seed: 9 });
  assert.deepEqual(answer(t.ids, 6, 'float32'), [...t.answer, EOS_ID]);
});

test('one cached context answers questions about two different keys asked at its end', () => {
  // Needle tokens can serve as keys too: the model continues from the unique earlier occurrence
  // of the current token. Here KEY -> n10 n11 n12 and n49 -> n50 n51 are both retrievable.
  const fill = (n: number) => Array.from({ length: n }, (_, i) => layout.firstFillerId + ((i * 37) % layout.fillerTokens));
  const n = (v: number) => FIRST_NEEDLE_ID + v;
  const context = [BOS_ID, ...fill(100), KEY_ID, n(10), n(11), n(12), ...fill(150), n(49), n(50), n(51), ...fill(80)];
  const first = new ReferenceDecoder(spec);
  first.append(context);
  const second = first.fork();
  assert.deepEqual(greedyGenerate(first, [KEY_ID], 4, [EOS_ID]), [n(10), n(11), n(12), EOS_ID]);
  assert.deepEqual(greedyGenerate(second, [n(49)], 3, [EOS_ID]), [n(50), n(51), EOS_ID]);
});

test('multi-needle haystack: needles `KEY c v1 .. vk` answered by questions `KEY c`', () => {
  // KEY repeats here; each needle's code c is the question's key and occurs exactly twice.
  const n = (v: number) => FIRST_NEEDLE_ID + v;
  const fill = (n: number, seed: number) => Array.from({ length: n }, (_, i) => layout.firstFillerId + ((i * 53 + seed) % layout.fillerTokens));
  const needles = [
    { code: n(70), values: [n(1), n(2), n(3), n(4)] },
    { code: n(0), values: [n(90), n(31)] }, // n0 shares a RoPE pair with KEY
    { code: n(95), values: [n(5), n(6), n(7)] },
  ];
  // The last needle directly follows the second: the KEY after its vk is what stops that answer.
  const context = [BOS_ID, ...needles.flatMap((x, i) => [...fill(i === 2 ? 0 : 120, i), KEY_ID, x.code, ...x.values]), ...fill(60, 9)];
  const decoder = new ReferenceDecoder(spec);
  decoder.append(context);
  for (const x of needles) {
    assert.deepEqual(expectedContinuation(layout, [...context, KEY_ID, x.code]), [...x.values, EOS_ID]);
    assert.deepEqual(greedyGenerate(decoder.fork(), [KEY_ID, x.code], x.values.length + 1, [EOS_ID]), [...x.values, EOS_ID]);
  }
});

test('without a needle the model answers </s> at once', () => {
  const prompt = [BOS_ID, ...Array.from({ length: 200 }, (_, i) => layout.firstFillerId + i), KEY_ID];
  assert.deepEqual(answer(prompt, 3), [EOS_ID]);
});

test('the protocol checker names the rule a prompt breaks', () => {
  const ok = recallTrial(layout, { length: 50, needle: [1, 2], depth: 0.5 }).ids;
  assert.deepEqual(expectedAnswer(layout, ok), [FIRST_NEEDLE_ID + 1, FIRST_NEEDLE_ID + 2]);
  assert.throws(() => expectedAnswer(layout, ok.slice(0, -1)), /last token must be KEY or a needle token/);
  assert.throws(() => expectedAnswer(layout, [...ok.slice(0, 5), KEY_ID, ...ok.slice(5)]), /exactly twice/);
  const repeated = ok.slice();
  repeated[1] = FIRST_NEEDLE_ID + 2;
  assert.throws(() => expectedAnswer(layout, repeated), /unique/);
  assert.throws(() => recallTrial(layout, { length: 50, needle: [1, 1], depth: 0 }), /distinct/);
  assert.throws(() => recallTrial(layout, { length: 4, needle: [1, 2], depth: 0 }), /no room/);
});
