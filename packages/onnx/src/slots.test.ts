/**
 * Documents in one step: a session that serves several caches (slots) runs the steps of different
 * documents, asked for together, as one packed step. Each document's fold and answers are the
 * ones it gets alone (its cache rows and logits to float precision, its greedy tokens equal), and a
 * step that fails in company fails alone while the others go on.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { foldAll, type Generation, generate, generateBatch, KvCacheError, type KvCache } from '@kvfold/fold-core';
import { type LoadedModel, loadModel } from './index.ts';
import { cacheDiff, maxAbsDiff, tinyLlamaFolder } from './test-models.ts';

const TEXTS = [
  'Each chunk attends to the cache of everything before it; its keys and values are appended. ',
  'Positions continue from one chunk to the next, so the model reads the document as one. ',
  'A frozen model reads far past one forward pass: no training, no change to the model. ',
];
const LENGTHS = [300, 170, 233];
const CHUNK = 64;

let alone: LoadedModel;
let shared: LoadedModel;
let docs: Int32Array[];
let question: Int32Array;

before(async () => {
  const dir = await tinyLlamaFolder('slots');
  alone = await loadModel(dir);
  shared = await loadModel(dir, { slots: 4 });
  docs = TEXTS.map((t, i) => alone.tokenizer.encodeDocument(t.repeat(12)).slice(0, LENGTHS[i]));
  question = alone.tokenizer.encodeContinuation(' What is appended, and where?');
});
after(async () => {
  await alone.close();
  await shared.close();
});

/** Folds every document on `model` at once (each its own loop, as a worker's jobs run), then answers `question` from each. */
async function foldTogether(model: LoadedModel, answer: (cache: KvCache) => Promise<Generation | Generation[]>) {
  return Promise.all(
    docs.map(async (doc) => {
      const cache = await model.decoder.createCache({ capacity: doc.length + 64 });
      const { lastLogits } = await foldAll(model.decoder, cache, doc, { chunkSize: CHUNK });
      return { cache, lastLogits: lastLogits as Float32Array, answer: await answer(cache) };
    }),
  );
}

test('the session serves 4 slots; a session without slots serves 1', () => {
  assert.equal(shared.decoder.slots, 4);
  assert.equal(alone.decoder.slots, 1);
});

test('three documents folded and answered together: their steps share runs, and each cache, logits and answer are its own', async () => {
  const reference = await foldTogether(alone, (c) => generate(alone.decoder, c, question, { maxNewTokens: 12 }));
  const before = { ...shared.decoder.counters };
  const together = await foldTogether(shared, (c) => generate(shared.decoder, c, question, { maxNewTokens: 12 }));
  const c = shared.decoder.counters;
  const steps = c.steps - before.steps;
  const runs = c.runs - before.runs;
  // 5 + 3 + 4 fold steps and 12 answer steps each: shared, every document's step in fewer runs than steps.
  assert.equal(steps, 5 + 3 + 4 + 3 * 12);
  assert.ok(c.sharedSteps - before.sharedSteps >= 30 && runs <= steps / 2, `${steps} steps in ${runs} runs, ${c.sharedSteps - before.sharedSteps} shared`);
  for (const [i, r] of reference.entries()) {
    const t = together[i] as (typeof together)[number];
    assert.equal(t.cache.length, LENGTHS[i]);
    assert.ok((await cacheDiff(r.cache, t.cache)) <= 1e-4, `document ${i}: cache rows`);
    assert.ok(maxAbsDiff(r.lastLogits, t.lastLogits) <= 1e-4, `document ${i}: last logits`);
    assert.deepEqual(t.answer, r.answer, `document ${i}: the answer`);
    await r.cache.release();
    await t.cache.release();
  }
});

test('documents whose questions are decoded together share steps with each other too', async () => {
  const questions = [question, alone.tokenizer.encodeContinuation(' Chunk'), alone.tokenizer.encodeContinuation(' x')];
  const reference = await foldTogether(alone, (c) => generateBatch(alone.decoder, c, questions, { maxNewTokens: 8 }));
  const together = await foldTogether(shared, (c) => generateBatch(shared.decoder, c, questions, { maxNewTokens: 8 }));
  for (const [i, r] of reference.entries()) assert.deepEqual(together[i]?.answer, r.answer, `document ${i}`);
});

test('a step that fails in company fails alone; the other documents go on', async () => {
  const caches = await Promise.all(docs.map((d) => shared.decoder.createCache({ capacity: d.length })));
  const gone = caches[1] as KvCache;
  const chunk = (i: number) => (docs[i] as Int32Array).slice(0, CHUNK);
  // The second cache is released on the session thread while its step waits for the run it shares.
  const steps = caches.map((c, i) => shared.decoder.step({ cache: c, tokens: chunk(i), logits: 'last' }));
  void gone.release();
  const [a, b, c] = await Promise.allSettled(steps);
  assert.equal(a?.status, 'fulfilled');
  assert.equal(c?.status, 'fulfilled');
  assert.equal(b?.status, 'rejected');
  assert.ok(b?.status === 'rejected' && b.reason instanceof KvCacheError && b.reason.code === 'KVF_KV_RELEASED', String(b?.status === 'rejected' && b.reason));
  assert.deepEqual(
    [caches[0]?.length, caches[2]?.length],
    [CHUNK, CHUNK],
  );
  await Promise.all(caches.map((x) => x.release()));
});
