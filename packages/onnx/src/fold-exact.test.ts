/**
 * The fold is exact: on tiny-llama run by onnxruntime-node, folding chunk by chunk with the KV
 * cache as accumulator gives the single pass's logits, cache and greedy answers.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type FoldStepInfo, foldAll, generate, type KvState } from '@kvfold/fold-core';
import { type LoadedModel, loadModel } from './index.ts';
import { tinyLlamaFolder } from './test-models.ts';

const TOLERANCE = 1e-4;
const DOC =
  'KV-Fold reads a long document chunk by chunk. Each chunk attends to the cache of everything before it; its keys and values are appended and positions continue. ';

let model: LoadedModel;
let tokens: Int32Array;
let single: { state: KvState; logits: Float32Array };

before(async () => {
  model = await loadModel(await tinyLlamaFolder('tiny'));
  tokens = model.tokenizer.encodeDocument(DOC.repeat(2)).slice(0, 200); // 200 = 28*7 + 4 = 3*64 + 8: not divisible
  assert.equal(tokens.length, 200);
  const r = await foldAll(model.decoder, tokens, { chunkSize: tokens.length, keepLogits: true });
  single = { state: r.state, logits: r.steps[0]?.logits as Float32Array };
});
after(() => model.close());

function foldedLogits(steps: FoldStepInfo[]): Float32Array {
  const out = new Float32Array(single.logits.length);
  let at = 0;
  for (const s of steps) {
    out.set(s.logits as Float32Array, at);
    at += (s.logits as Float32Array).length;
  }
  assert.equal(at, out.length);
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

for (const chunkSize of [1, 7, 64]) {
  test(`folded logits equal single-pass logits with chunks of ${chunkSize} over 200 tokens`, async () => {
    const r = await foldAll(model.decoder, tokens, { chunkSize, keepLogits: true });
    assert.equal(r.steps.length, Math.ceil(200 / chunkSize));
    const diff = maxAbsDiff(foldedLogits(r.steps), single.logits);
    assert.ok(diff <= TOLERANCE, `max |folded - single| = ${diff}`);
    // The cache itself matches: every K/V row, rotated at its own position.
    for (let l = 0; l < r.state.layers.length; l++) {
      assert.ok(maxAbsDiff(r.state.layers[l]?.key as Float32Array, single.state.layers[l]?.key as Float32Array) <= TOLERANCE);
      assert.ok(maxAbsDiff(r.state.layers[l]?.value as Float32Array, single.state.layers[l]?.value as Float32Array) <= TOLERANCE);
    }
  });
}

test('without the carried cache the same chunks give different logits (the comparison can fail)', async () => {
  const chunk = tokens.slice(64, 128);
  const alone = await foldAll(model.decoder, chunk, { chunkSize: 64, keepLogits: true });
  const offset = 64 * model.decoder.layout.vocabSize;
  const diff = maxAbsDiff(alone.steps[0]?.logits as Float32Array, single.logits.subarray(offset, offset + chunk.length * model.decoder.layout.vocabSize));
  assert.ok(diff > 0.1, `a chunk read without its past should differ; max diff ${diff}`);
});

test('KV length and positions are right after every step', async () => {
  const r = await foldAll(model.decoder, tokens, { chunkSize: 64, keepLogits: true });
  assert.deepEqual(
    r.steps.map((s) => [s.step, s.tokens, s.kvLength]),
    [
      [1, 64, 64],
      [2, 128, 128],
      [3, 192, 192],
      [4, 200, 200],
    ],
  );
  assert.equal(r.state.nextPosition, 200);
  assert.equal(r.state.length, 200);
  // A row folded at step 3 holds the key rotated for its absolute position: equal to the single pass's row.
  const { kvHeads, headDim } = model.decoder.layout;
  const row = (s: KvState, h: number, i: number) => (s.layers[0]!.key as Float32Array).subarray((h * s.length + i) * headDim, (h * s.length + i + 1) * headDim);
  for (let h = 0; h < kvHeads; h++) assert.ok(maxAbsDiff(row(r.state, h, 150), row(single.state, h, 150)) <= TOLERANCE);
});

test('greedy answers after a fold equal the answers after one single pass, for every query from the same state', async () => {
  const folded = await foldAll(model.decoder, tokens, { chunkSize: 7 });
  const queries = [' What does each chunk attend to?', ' Positions', ' KV'];
  for (const q of queries) {
    const ids = model.tokenizer.encodeContinuation(q);
    const opts = { maxNewTokens: 12, stopTokens: model.stopTokens };
    const a = await generate(model.decoder, single.state, ids, opts);
    const b = await generate(model.decoder, folded.state, ids, opts);
    assert.deepEqual(b, a, `answer to ${JSON.stringify(q)}`);
  }
  assert.equal(folded.state.length, 200, 'generation does not grow the folded state');
});

test('a continuing fold sends its cache to the session thread once, not every step', async () => {
  const before = { ...model.decoder.stats };
  const r = await foldAll(model.decoder, tokens, { chunkSize: 64 });
  const steps = model.decoder.stats.steps - before.steps;
  const kept = model.decoder.stats.pastKept - before.pastKept;
  assert.equal(steps, 4);
  assert.equal(kept, 3, 'every step after the first feeds the kept cache');
  // A query continues from the fold's last step (kept); the next query starts over from the same
  // folded state, which the session thread no longer holds, so that past is sent.
  const q = model.tokenizer.encodeContinuation(' KV');
  const mid = { ...model.decoder.stats };
  await generate(model.decoder, r.state, q, { maxNewTokens: 3 });
  assert.equal(model.decoder.stats.pastKept - mid.pastKept, 3);
  const mid2 = { ...model.decoder.stats };
  await generate(model.decoder, r.state, q, { maxNewTokens: 3 });
  assert.equal(model.decoder.stats.steps - mid2.steps, 3);
  assert.equal(model.decoder.stats.pastKept - mid2.pastKept, 2);
});
