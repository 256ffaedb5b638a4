/**
 * The fold loop against a pure positional decoder: its K rows record the position each token was
 * given and its logits count the context it saw, so the loop's bookkeeping (positions continue,
 * the cache grows by each chunk, resume picks up where it stopped) is checked without a runtime.
 * The same properties are checked on a real ONNX model in @kvfold/onnx.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fold, foldAll } from './fold.ts';
import { generate } from './generate.ts';
import type { DecoderModel, StepInput, StepOutput } from './model.ts';

const VOCAB = 8;

/** Logit v of token i is 1 for v == (context length seen by token i) % VOCAB; K rows hold positions. */
const positional: DecoderModel = {
  layout: { layers: 1, kvHeads: 1, headDim: 2, dtype: 'float32', maxPositions: 1 << 20, vocabSize: VOCAB },
  async step({ tokens, past, position, logits }: StepInput): Promise<StepOutput> {
    const n = tokens.length;
    const all = new Float32Array(n * VOCAB);
    for (let i = 0; i < n; i++) all[i * VOCAB + ((past.length + i + 1) % VOCAB)] = 1;
    const key = new Float32Array(n * 2);
    const value = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) {
      key[i * 2] = position + i;
      value[i * 2] = tokens[i] as number;
    }
    const out = logits === 'all' ? all : logits === 'last' ? all.slice((n - 1) * VOCAB) : new Float32Array(0);
    return { logits: out, rows: { rows: n, layers: [{ key, value }] } };
  },
};

const doc = Int32Array.from({ length: 23 }, (_, i) => (i * 5) % VOCAB);

test('positions continue and the cache grows by each chunk', async () => {
  const seen: number[] = [];
  for await (const s of fold(positional, doc, { chunkSize: 5 })) {
    seen.push(s.kvLength);
    assert.equal(s.state.nextPosition, s.tokens);
    const keys = s.state.layers[0]?.key as Float32Array;
    for (let r = 0; r < s.state.length; r++) assert.equal(keys[r * 2], r, `row ${r} holds position ${r}`);
  }
  assert.deepEqual(seen, [5, 10, 15, 20, 23]);
});

test('a fold stopped at a step and resumed equals an uninterrupted one', async () => {
  const whole = await foldAll(positional, doc, { chunkSize: 4, nll: true });
  let stoppedAt: { step: number; state: (typeof whole)['state']; lastLogits: Float32Array } | undefined;
  for await (const s of fold(positional, doc, { chunkSize: 4, nll: true })) {
    if (s.step === 3) {
      stoppedAt = { step: s.step, state: s.state, lastLogits: s.lastLogits };
      break;
    }
  }
  assert.ok(stoppedAt);
  const rest = await foldAll(positional, doc, { chunkSize: 4, nll: true, from: stoppedAt });
  assert.deepEqual(rest.state, whole.state);
  assert.deepEqual(
    rest.steps.map((s) => s.nll),
    whole.steps.slice(3).map((s) => s.nll),
  );
  assert.deepEqual(rest.lastLogits, whole.lastLogits);
});

test('per-chunk NLL scores each token given everything before it', async () => {
  const { steps } = await foldAll(positional, doc, { chunkSize: 10, nll: true });
  assert.deepEqual(
    steps.map((s) => s.nllTokens),
    [9, 10, 3],
  );
  for (const s of steps) assert.ok(Number.isFinite(s.nll));
});

test('generation starts every query from the same folded state', async () => {
  const { state } = await foldAll(positional, doc, { chunkSize: 6 });
  const a = await generate(positional, state, Int32Array.of(1, 2), { maxNewTokens: 4 });
  const b = await generate(positional, state, Int32Array.of(3, 4), { maxNewTokens: 4 });
  // After 23 + 2 tokens, token 25's logits peak at (25 + 0) % 8 ... each next token sees one more.
  assert.deepEqual(a.tokenIds, [(23 + 2) % 8, (23 + 3) % 8, (23 + 4) % 8, (23 + 5) % 8]);
  assert.deepEqual(b.tokenIds, a.tokenIds);
  assert.equal(state.length, 23);
  const stopped = await generate(positional, state, Int32Array.of(1, 2), { maxNewTokens: 4, stopTokens: [(23 + 4) % 8] });
  assert.deepEqual(stopped, { tokenIds: [1, 2], stopReason: 'stop-token' });
});

test('resuming past the end is refused', async () => {
  const { state } = await foldAll(positional, doc, { chunkSize: 6 });
  await assert.rejects(foldAll(positional, doc, { chunkSize: 6, from: { step: 9, state } }), /cannot resume at step 9: the fold has 4 steps/);
});
