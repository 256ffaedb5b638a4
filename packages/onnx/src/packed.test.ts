/**
 * Packed steps on onnxruntime-node: the questions of a folded document decoded together, each
 * step reading the folded cache once for all of them. Each answer equals the one its question gets
 * alone (greedy and sampled, with stop tokens), the logits agree to float precision, a decode step
 * copies what its tokens cost whatever the cache holds, and a graph that cannot pack answers one
 * question at a time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type DecoderModel, foldAll, type Generation, generate, generateBatch, type KvCache } from '@kvfold/fold-core';
import { recallSpec } from '@kvfold/model-zoo';
import { type LoadedModel, loadModel } from './index.ts';
import { maxAbsDiff, modelFolder, tinyLlamaFolder } from './test-models.ts';

let model: LoadedModel;
let cache: KvCache;
let questions: Int32Array[];
const DOC = 'Each chunk attends to the cache of everything before it; its keys and values are appended. ';

before(async () => {
  model = await loadModel(await tinyLlamaFolder('packed'));
  const tokens = model.tokenizer.encodeDocument(DOC.repeat(10)).slice(0, 300);
  cache = await model.decoder.createCache({ capacity: 420 });
  await foldAll(model.decoder, cache, tokens, { chunkSize: 64 });
  questions = [' What is appended?', ' Chunk', ' Where do the keys go, and the values?', ' x', ' before it'].map((q) => model.tokenizer.encodeContinuation(q));
});
after(() => model.close());

/** The decoder seen through `step` alone: `generate` runs the standard step graph (present outputs), the reference every packed answer is held to. */
const stepOnly = (decoder: DecoderModel): DecoderModel => ({
  layout: decoder.layout,
  createCache: (o) => decoder.createCache(o),
  step: (input) => decoder.step(input),
});

const alone = async (options: { maxNewTokens: number; stopTokens?: number[]; seed?: number }): Promise<Generation[]> => {
  const out: Generation[] = [];
  for (const [i, q] of questions.entries()) {
    const sampling = options.seed === undefined ? undefined : { temperature: 3, seed: options.seed + i };
    out.push(await generate(stepOnly(model.decoder), cache, q, { maxNewTokens: options.maxNewTokens, ...(options.stopTokens ? { stopTokens: options.stopTokens } : {}), ...(sampling ? { sampling } : {}) }));
  }
  return out;
};

test('the session packs: GroupQueryAttention over the whole buffer, positions per token', () => {
  assert.equal(model.decoder.packs, true);
});

test('one question alone runs packed steps and answers as the standard step graph does', async () => {
  const { counters } = model.decoder;
  const before = counters.packedSteps;
  const packed = await generate(model.decoder, cache, questions[2] as Int32Array, { maxNewTokens: 12 });
  assert.equal(counters.packedSteps - before, 12, 'its prompt step and 11 decode steps, packed');
  const standard = await generate(stepOnly(model.decoder), cache, questions[2] as Int32Array, { maxNewTokens: 12 });
  assert.equal(counters.packedSteps - before, 12, 'the standard graph ran none packed');
  assert.deepEqual(packed, standard);
});

for (const maxBatch of [2, 5]) {
  test(`5 questions decoded ${maxBatch} at a time answer as each does alone: greedy, sampled, and stopped`, async () => {
    const greedy = await alone({ maxNewTokens: 10 });
    assert.deepEqual(await generateBatch(model.decoder, cache, questions, { maxNewTokens: 10, maxBatch }), greedy);
    // Prompts read a few tokens a step: some together, the longest alone; or one a step.
    const steps = async (maxStepTokens: number) => {
      const before = model.decoder.counters.packedSteps;
      assert.deepEqual(await generateBatch(model.decoder, cache, questions, { maxNewTokens: 10, maxBatch, maxStepTokens }), greedy);
      return model.decoder.counters.packedSteps - before;
    };
    const [together, some, apart] = [await steps(256), await steps(Math.max(...questions.map((q) => q.length))), await steps(1)];
    assert.ok(together < some && some < apart, `packed steps: ${together} with every prompt in one, ${some} a few at a time, ${apart} one at a time`);
    const sampled = await alone({ maxNewTokens: 10, seed: 7 });
    assert.notDeepEqual(
      sampled.map((g) => g.tokenIds),
      greedy.map((g) => g.tokenIds),
      'sampling at temperature 3 draws other tokens',
    );
    const packedSampled = await generateBatch(model.decoder, cache, questions, { maxNewTokens: 10, maxBatch, sampling: (i) => ({ temperature: 3, seed: 7 + i }) });
    assert.deepEqual(packedSampled, sampled);
    // A stop token that one answer meets early: that question leaves the batch, the others go on.
    const stop = greedy[2]?.tokenIds[3] as number;
    const stopped = await alone({ maxNewTokens: 10, stopTokens: [stop] });
    const packedStopped = await generateBatch(model.decoder, cache, questions, { maxNewTokens: 10, maxBatch, stopTokens: [stop] });
    assert.deepEqual(packedStopped, stopped);
    assert.ok(packedStopped.some((g) => g.stopReason === 'stop-token') && packedStopped.some((g) => g.stopReason === 'max-new-tokens'));
    assert.equal(cache.length, 300, 'the folded cache is as it was');
  });
}

test("a packed step's logits are the question's own, to float precision", async () => {
  const vocab = model.decoder.layout.vocabSize;
  const mark = cache.mark();
  const [a, b] = [questions[0] as Int32Array, questions[2] as Int32Array];
  const single = async (q: Int32Array) => {
    const out = await model.decoder.step({ tokens: q, cache, logits: 'last' });
    await cache.rewind(mark);
    return out.logits;
  };
  const [la, lb] = [await single(a), await single(b)];
  // Both questions in one step: a's tokens then b's, each at positions 300.., each seeing only its own.
  const tokens = Int32Array.from([...a, ...b]);
  const positions = Int32Array.from([...a.keys(), ...b.keys()].map((i) => 300 + i));
  const sequences = Int32Array.from([...a].map(() => 0).concat([...b].map(() => 1)));
  const out = await model.decoder.stepPacked({ cache, tokens, positions, sequences, prefixRows: 300, rowSequences: new Int32Array(0), logitsAt: Int32Array.of(a.length - 1, tokens.length - 1) });
  await cache.rewind(mark);
  assert.ok(maxAbsDiff(out.logits.subarray(0, vocab), la) <= 1e-4);
  assert.ok(maxAbsDiff(out.logits.subarray(vocab), lb) <= 1e-4);
});

test('a packed decode step copies what its tokens cost, not what the cache holds', async () => {
  const { decoder } = model;
  const long = model.tokenizer.encodeDocument(DOC.repeat(60)).slice(0, 3000);
  const big = await decoder.createCache({ capacity: 3100 });
  await foldAll(decoder, big, long, { chunkSize: 256 });
  const perStep = async (c: KvCache) => {
    const before = { ...decoder.counters };
    await generateBatch(decoder, c, questions.slice(0, 4), { maxNewTokens: 8 });
    return (decoder.counters.copiedBytes - before.copiedBytes) / (decoder.counters.steps - before.steps);
  };
  const [small, large] = [await perStep(cache), await perStep(big)];
  assert.ok(Math.abs(large - small) < 1024, `bytes copied per packed step: ${small.toFixed(0)} over 300 cached rows, ${large.toFixed(0)} over 3000`);
  await big.release();
});

test('a graph that cannot pack (Concat attention, one head) answers one question at a time, the same', async () => {
  const recall = await loadModel(await modelFolder('packed-recall', recallSpec({ maxPositions: 4096 })));
  try {
    assert.equal(recall.decoder.packs, false);
    const doc = recall.tokenizer.encodeDocument('f1 f2 KEY n3 n4 n5 f6 f7 f8 f9');
    const c = await recall.decoder.createCache({ capacity: 64 });
    await foldAll(recall.decoder, c, doc, { chunkSize: 4 });
    const q = [recall.tokenizer.encodeContinuation('KEY'), recall.tokenizer.encodeContinuation('f7')];
    const one = [await generate(recall.decoder, c, q[0] as Int32Array, { maxNewTokens: 3 }), await generate(recall.decoder, c, q[1] as Int32Array, { maxNewTokens: 3 })];
    assert.deepEqual(await generateBatch(recall.decoder, c, q, { maxNewTokens: 3, maxBatch: 8 }), one);
    assert.equal(recall.tokenizer.decode(one[0]?.tokenIds ?? []), 'n3 n4 n5');
  } finally {
    await recall.close();
  }
});

test('a cache held at int8 packs too: the packed answers are the one-at-a-time answers', async () => {
  const narrow = await loadModel(model.folder.dir, { kvDtype: 'int8' });
  try {
    assert.equal(narrow.decoder.packs, true);
    const c = await narrow.decoder.createCache({ capacity: 420 });
    await foldAll(narrow.decoder, c, model.tokenizer.encodeDocument(DOC.repeat(10)).slice(0, 300), { chunkSize: 64 });
    const one: Generation[] = [];
    for (const q of questions) one.push(await generate(stepOnly(narrow.decoder), c, q, { maxNewTokens: 8 }));
    assert.deepEqual(await generateBatch(narrow.decoder, c, questions, { maxNewTokens: 8 }), one);
  } finally {
    await narrow.close();
  }
});
